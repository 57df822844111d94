"""The train page: pairs available, training with a chosen loss, the gate's decision, versions."""

from __future__ import annotations

import streamlit as st

from indexer.generations import promote_version, rollback
from indexer.training.options import PairSources, TrainingOptions
from indexer.training.retrain import retrain
from searchapp.choices import LOSS, POOLING
from searchapp.errors import SearchappError
from searchapp.feedback import feedback_counts
from searchapp.progress import CallbackProgress, Update
from searchapp.versions import list_versions
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


def _train(sources: PairSources, options: TrainingOptions) -> None:
    bar = st.progress(0.0, text="Starting…")

    def show(update: Update) -> None:
        bar.progress(update.fraction, text=f"{update.stage}: {update.done} / {update.total}")

    try:
        with st.spinner("Training on the CPU: this takes minutes…"):
            report = retrain(settings(), sources, options, progress=CallbackProgress(show))
    except SearchappError as error:
        bar.empty()
        st.error(str(error))
        return
    bar.progress(1.0, text="Done")
    st.session_state["last_report"] = report


def _show_report() -> None:
    report = st.session_state.get("last_report")
    if report is None:
        return
    (st.success if report.promoted else st.warning)(
        f"Version {report.version}: {'promoted' if report.promoted else 'not promoted'} — "
        f"{report.reason}"
    )
    st.table(
        [
            {"metric": name, "before": report.before[name], "after": report.after[name]}
            for name in ("ndcg@10", "recall@100", "mrr@10")
        ]
    )
    st.caption(f"{report.pairs_used} training rows, {report.pairs_skipped} rows skipped")
    for where, reason in report.skipped[:50]:
        st.caption(f"skipped {where}: {reason}")


def _versions() -> None:
    st.subheader("Model versions")
    versions = list_versions(database())
    st.dataframe(
        [
            {"id": v.id, "status": v.status, "name": v.name, "pooling": v.pooling,
             "layer": v.layer or "final", "gate nDCG@10": v.gate,
             "fingerprint": v.fingerprint[:12]}
            for v in versions
        ],
        hide_index=True,
        use_container_width=True,
    )  # fmt: skip
    left, right = st.columns(2)
    choice = left.selectbox("Version", [v.id for v in versions], key="promote_choice")
    try:
        if left.button("Serve this version") and choice is not None:
            with st.spinner("Embedding with that version (search keeps working)…"):
                promote_version(database(), settings(), int(choice))
            st.rerun()
        if right.button("Roll back to the previous version"):
            with st.spinner("Switching back…"):
                rollback(database(), settings())
            st.rerun()
    except SearchappError as error:
        st.error(str(error))


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
        force = st.checkbox("Serve the new version even if it is not better")
        start = st.form_submit_button("Train")
    if start:
        sources = PairSources(files=(pairs,) if pairs else (), feedback=True)
        options = TrainingOptions(
            loss=loss,
            pooling=None if pooling == KEEP else pooling,
            layer=int(layer) or None,
            epochs=int(epochs),
            force=force,
        )
        _train(sources, options)
    _show_report()
    _versions()
