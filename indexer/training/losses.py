"""The training losses a user can choose, each fed the data it works best with.

- ``mnrl``: (query, positive, hard negatives…) rows, one column per mined negative; every other
  row's passages in the batch are extra negatives. MultipleNegativesRankingLoss with a
  no-duplicates batch sampler. The default: in-batch negatives come for free and it is the
  strongest of the four for retrieval.
- ``contrastive``: (query, passage, 1) for positives and (query, hard negative, 0). ContrastiveLoss
  with cosine distance and margin 0.5.
- ``triplet``: (query, positive, hard negative), a row for each negative. TripletLoss with cosine
  distance and margin 0.3: the default Euclidean margin of 5 can never be met by unit vectors
  (their distance is at most 2).
- ``cosine``: (query, passage, score), the given score (1 by default) and 0 for mined negatives.
  CosineSimilarityLoss.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexer.training.mining import MinedQuery
from searchapp.choices import LOSS, RELEVANT_SCORE

TRIPLET_MARGIN = 0.3
CONTRASTIVE_MARGIN = 0.5


def training_rows(loss: str, mined: Sequence[MinedQuery]) -> dict[str, list]:
    """The dataset columns for ``loss``; only input columns and ``label``/``score``."""
    LOSS.check(loss)
    if loss == "mnrl":
        return _ranking_rows(mined)
    if loss == "triplet":  # one row per (positive, negative): the loss takes one negative
        rows: dict[str, list] = {"anchor": [], "positive": [], "negative": []}
        for item in mined:
            for positive, _ in item.positives:
                for negative, _ in item.negatives:
                    rows["anchor"].append(item.query)
                    rows["positive"].append(positive)
                    rows["negative"].append(negative)
        return rows
    column = "label" if loss == "contrastive" else "score"
    rows = {"sentence1": [], "sentence2": [], column: []}
    for item in mined:
        for passage, score in (*item.positives, *item.negatives):
            rows["sentence1"].append(item.query)
            rows["sentence2"].append(passage)
            if loss == "contrastive":
                rows[column].append(int(score >= RELEVANT_SCORE))
            else:
                rows[column].append(float(score))
    return rows


def _ranking_rows(mined: Sequence[MinedQuery]) -> dict[str, list]:
    """(anchor, positive, negative[, negative_2, …]): as many negative columns as a query has
    negatives at most; a query with fewer repeats its own (one without any is left out)."""
    usable = [item for item in mined if item.negatives]
    width = max((len(item.negatives) for item in usable), default=1)
    names = ["negative", *(f"negative_{n}" for n in range(2, width + 1))]
    rows: dict[str, list] = {"anchor": [], "positive": [], **{name: [] for name in names}}
    for item in usable:
        for i, (positive, _) in enumerate(item.positives):
            rows["anchor"].append(item.query)
            rows["positive"].append(positive)
            for n, name in enumerate(names):  # each positive starts at another negative
                rows[name].append(item.negatives[(i + n) % len(item.negatives)][0])
    return rows


def make_loss(loss: str, model, toward_served: float = 0.0):  # type: ignore[no-untyped-def]
    """The sentence-transformers loss object for ``loss``, configured for unit vectors; with
    ``toward_served``, held near the weights ``model`` starts from (``TowardStart``)."""
    from sentence_transformers.sentence_transformer import losses

    LOSS.check(loss)
    if loss == "mnrl":
        chosen = losses.MultipleNegativesRankingLoss(model)
    elif loss == "contrastive":
        chosen = losses.ContrastiveLoss(
            model,
            distance_metric=losses.SiameseDistanceMetric.COSINE_DISTANCE,
            margin=CONTRASTIVE_MARGIN,
        )
    elif loss == "triplet":
        chosen = losses.TripletLoss(
            model,
            distance_metric=losses.TripletDistanceMetric.COSINE,
            triplet_margin=TRIPLET_MARGIN,
        )
    else:
        chosen = losses.CosineSimilarityLoss(model)
    return toward_start(chosen, model, toward_served) if toward_served else chosen


def toward_start(loss, model, weight: float):  # type: ignore[no-untyped-def]
    """``loss`` plus ``weight`` times the squared distance of ``model``'s trainable weights from
    where they started (L2-SP: Li, Grandvalet and Davoine, 2018), so that a few pairs move the
    served model no further than they must."""
    import torch

    class TowardStart(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.loss, self.model = loss, model
            self.weights = [p for p in model.parameters() if p.requires_grad]
            self.start = [p.detach().clone() for p in self.weights]

        def forward(self, features, labels):  # type: ignore[no-untyped-def]
            pairs = zip(self.weights, self.start, strict=True)
            drift = sum(((p - p0) ** 2).sum() for p, p0 in pairs)
            return self.loss(features, labels) + weight * drift

    return TowardStart()
