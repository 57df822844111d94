"""The train page: pairs available, training with a chosen loss (a job, watched live), the gate's
decision, versions. The UI's process never loads a training model."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from indexer.training.options import PairSources, TrainingOptions, TrainOptions
from searchapp.base_models import locate, recorded_name
from searchapp.choices import GATE, LOSS, POOLING
from searchapp.errors import SearchappError
from searchapp.feedback import feedback_counts
from searchapp.operations import PromoteOptions, RollbackOptions, SwitchOptions
from searchapp.search import DENSE_WEIGHT
from searchapp.versions import list_versions
from ui import jobs_panel
from ui.resources import database, settings

KEEP = "keep current"


def _pairs_file() -> str | None:
    upload = st.file_uploader("Import pairs (JSONL or CSV: query, positive, …)", ["jsonl", "csv"])
    if upload is None:
        return None
    target = settings().home / "pairs" / upload.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(upload.getvalue())
    rows = sum(1 for line in upload.getvalue().splitlines() if line.strip())
    st.caption(f"{upload.name}: {rows} lines")
    return str(target)


def _versions() -> None:
    st.subheader("Model versions")
    versions = list_versions(database())
    st.dataframe(
        [
            {"id": v.id, "status": v.status, "name": v.name, "pooling": v.pooling,
             "layer": v.layer or "final", "base model": v.base_model,
             "dimensions": v.dimension, "held-out nDCG@10": v.gate,
             "gate decided on": v.decided_on,
             "hybrid dense weight": v.dense_weight or DENSE_WEIGHT,
             "fingerprint": v.fingerprint[:12]}
            for v in versions
        ],
        hide_index=True,
        use_container_width=True,
    )  # fmt: skip
    left, right = st.columns(2)
    choice = left.selectbox("Version", [v.id for v in versions], key="promote_choice")
    # Serving a version embeds every chunk with it: a job, while search keeps working.
    if left.button("Serve this version") and choice is not None:
        jobs_panel.start("promote", PromoteOptions(version=int(choice)))
    if right.button("Roll back to the previous version"):
        jobs_panel.start("rollback", RollbackOptions())


def _switch_form() -> None:
    st.subheader("Switch model")
    st.caption("Start from another sentence-transformers model: every chunk is embedded again "
               "while search goes on, and it is served unless it is worse with confidence on "
               "the evaluation set (a BEIR folder's split, else the queries earlier trainings "
               "held out).")  # fmt: skip
    with st.form("switch"):
        model = st.text_input("Model: a folder, or a name such as intfloat/e5-small-v2")
        query, document = st.columns(2)
        query_prompt = query.text_input("Query prompt (blank: the model's own; e5: 'query: ')")
        document_prompt = document.text_input(
            "Document prompt (blank: the model's own; e5: 'passage: ')"
        )
        left, right = st.columns([3, 1])
        eval_beir = left.text_input("Compare the two on a BEIR folder (optional)")
        split = right.text_input("Split", value=SwitchOptions.eval_split)
        force = st.checkbox("Serve it even if it is worse")
        start = st.form_submit_button("Switch")
    if not start:
        return
    name = model.strip()
    if not name:
        st.error("Name a model: a folder, or a name such as intfloat/e5-small-v2.")
        return
    try:
        if Path(name).expanduser().exists() or name.startswith(("/", ".", "~")):
            locate(name)  # a folder is checked now; a name is found (or downloaded) by the job
        options = SwitchOptions(
            recorded_name(name), eval_beir=eval_beir.strip() or None,
            eval_split=split.strip() or "test", force=force,
            query_prompt=query_prompt or None, document_prompt=document_prompt or None,
        )  # fmt: skip
    except SearchappError as error:
        st.error(str(error))
        return
    jobs_panel.start("switch", options)


GATE_LABELS = {
    "by-document": "queries about documents it was not trained on",
    "two-part": "queries about the documents it was trained on (and not worse on the others)",
}


def render() -> None:
    st.header("Train")
    relevant, not_relevant = feedback_counts(database())
    st.markdown(f"Feedback stored from searches: **{relevant}** 👍 and **{not_relevant}** 👎.")
    pairs = _pairs_file()
    with st.form("train"):
        loss = st.selectbox("Loss", LOSS.values, index=LOSS.values.index(LOSS.default))
        left, middle, right = st.columns(3)
        pooling = left.selectbox("Pooling", (KEEP, *POOLING.values))
        layer = middle.number_input("Layer (0 = keep current)", min_value=0, max_value=24)
        epochs = right.number_input(
            "Epochs", min_value=1, max_value=10, value=TrainingOptions.epochs
        )
        replay = st.slider(
            "Replay: earlier training queries mixed in, per new query",
            min_value=0.0, max_value=3.0, value=TrainingOptions.replay, step=0.5,
        )  # fmt: skip
        gate = st.radio(
            "Gate: the new version is served when it is better with confidence on",
            GATE.values, index=GATE.values.index(GATE.default), horizontal=True,
            format_func=GATE_LABELS.get,
        )  # fmt: skip
        force = st.checkbox("Serve the new version even if it is not better")
        start = st.form_submit_button("Train")
    if start:
        sources = PairSources(files=(Path(pairs),) if pairs else (), feedback=True)
        training = TrainingOptions(
            loss=loss, pooling=None if pooling == KEEP else pooling, layer=int(layer) or None,
            epochs=int(epochs), replay=float(replay), gate=gate, force=force,
        )  # fmt: skip
        jobs_panel.start("train", TrainOptions(sources, training))
    jobs_panel.panel(kinds=("train", "promote", "rollback", "switch"), title="Training jobs")
    _versions()
    _switch_form()
