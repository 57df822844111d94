"""Training: (query, document) pairs in, a fine-tuned bi-encoder out, served only if better.

One step per module, in the order ``retrain`` runs them:

- ``options``: where pairs come from and how to train (light: the command line reads it).
- ``pairs``: pairs files, a BEIR split and the UI's feedback, as judgements; the held-out split.
- ``mining``: hard negatives from the served index, and each positive's best passage.
- ``losses``: the losses a user can choose, and the training rows each one wants.
- ``fine_tune``: sentence-transformers' trainer; saves a complete model folder.
- ``gate``: both models scored on the held-out queries, and the decision to promote.
- ``retrain``: the steps above, under the writer lock, and the report.
"""
