"""Jobs in the UI: pages start long work as jobs and watch them; they never do the work.

A job runs in a ``searchapp`` process of its own (``searchapp.jobs``), so it goes on when the page
is left, the tab reloaded or closed, or the UI server stopped. Every browser session sees the same
jobs: the panel reads them from the database, and refreshes itself every second while one runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import streamlit as st

from indexer.pipeline import IndexSummary
from indexer.training.retrain import TrainingReport
from searchapp import jobs
from searchapp.errors import SearchappError
from searchapp.operations import (
    CheckResult,
    RemoveResult,
    ServedResult,
    SwitchResult,
    WatchResult,
)
from searchapp.status import by_reason
from searchapp.versions import needed_said
from ui.resources import database, markdown_text, settings

# How often the job views look again: the panel of a page, and the sidebar's line per job.
REFRESH_SECONDS = 1.0
RECENT = 5


def start(
    operation: str, options: object, overrides: Mapping[str, object] | None = None
) -> int | None:
    """Start ``operation`` with ``options`` as a job; shows the error and returns None if
    refused."""
    try:
        job_id = jobs.start(settings(), database(), operation, options, overrides)
    except SearchappError as error:
        st.error(str(error))
        return None
    st.toast(f"Job {job_id} started: it goes on even if you leave this page.")
    return job_id


def panel(kinds: Sequence[str] | None = None, title: str = "Jobs") -> None:
    """The running, queued and recent jobs (of ``kinds``), live."""
    st.subheader(title)
    _live(tuple(kinds) if kinds else None)


@st.fragment(run_every=REFRESH_SECONDS)
def _live(kinds: tuple[str, ...] | None) -> None:
    views = [view for view in jobs.list_jobs(database(), limit=50)
             if kinds is None or view.kind in kinds]  # fmt: skip
    active = [view for view in views if view.active]
    recent = [view for view in views if not view.active][:RECENT]
    if not views:
        st.caption("No jobs yet.")
    for view in [*active, *recent]:
        _job(view)


def _job(view: jobs.JobView) -> None:
    with st.container(border=True, key=f"job-{view.id}"):
        head, action = st.columns([6, 1])
        head.markdown(f"**Job {view.id}** · {view.kind} · **{view.state}**  \n`{view.command}`")
        if view.active:
            if action.button("Cancel", key=f"cancel-{view.id}", disabled=view.cancel_requested):
                _act(lambda: jobs.cancel(database(), view.id))
            text = view.progress_line()
            if view.detail:
                text += f" · {Path(view.detail.split(' · ')[-1]).name}"
            st.progress(view.fraction, text=text)
            return
        if view.again and action.button(view.again, key=f"again-{view.id}"):
            _act(lambda: jobs.resume(settings(), database(), view.id))
        if view.error:
            st.error(view.error)
        if view.state == "succeeded" and view.result is not None:
            result = view.typed_result()
            if result is None:
                st.json(view.result, expanded=False)  # stored by an older searchapp
            else:
                SHOW[type(result)](result)


def _act(action: Callable[[], object]) -> None:
    try:
        action()
    except SearchappError as error:
        st.error(str(error))
    else:
        st.rerun(scope="fragment")


def _index_result(summary: IndexSummary) -> None:
    figures = [
        ("Added", summary.added),
        ("Updated", summary.updated),
        ("Unchanged", summary.unchanged),
        ("Failed", len(summary.failed)),
        ("Skipped", len(summary.skipped)),
        ("Ignored", len(summary.ignored)),
        ("Removed", summary.removed),
        ("Chunks written", summary.chunks),
        ("Chunks embedded", summary.embedded),
    ]
    for column, (label, value) in zip(st.columns(len(figures)), figures, strict=True):
        column.metric(label, value)
    st.caption(f"{summary.files} files accounted for in {summary.seconds:.1f} s")
    if summary.failed:
        st.error(f"{len(summary.failed)} files could not be indexed:")
        _by_reason(summary.failed)
    if summary.skipped:
        st.markdown(f"**{len(summary.skipped)} skipped**, not documents searchapp reads:")
        _by_reason(summary.skipped)
    if summary.ignored:
        st.markdown(f"**{len(summary.ignored)} ignored** by a rule:")
        _by_reason(summary.ignored)


def _by_reason(entries: Sequence[tuple[str, str]]) -> None:
    """One line per reason ("12 files: needs OCR, and OCR is off"), its files in an expander."""
    groups = by_reason(entries)
    for reason, paths in groups:
        label = f"{len(paths)} files: {reason}" if len(paths) > 1 else f"{paths[0]}: {reason}"
        if len(paths) == 1:
            st.markdown(f"- {markdown_text(label)}")
            continue
        with st.expander(label):
            st.dataframe({"path": paths}, hide_index=True, use_container_width=True)


def _compared(gate: dict, held_out: dict, which: str) -> str:
    """One of the gate's comparisons (``Comparison.to_json``) in a sentence."""
    low, high = gate["interval"]
    return (
        f"On **{gate['queries']} held-out queries** {which} ({held_out['documents']} "
        f"documents): the candidate ranks **{gate['wins']} better**, **{gate['losses']} worse** "
        f"and {gate['ties']} the same; mean nDCG@10 change {gate['gain']:+.4f}, "
        f"{gate['confidence']:.0%} interval {low:+.4f} to {high:+.4f}."
    )


def _train_result(report: TrainingReport) -> None:
    (st.success if report.promoted else st.warning)(
        f"Version {report.version}: {'promoted' if report.promoted else 'not promoted'} — "
        f"{report.reason}"
    )
    if report.promoted and not report.passed_gate:
        st.caption("Served because you asked to: the gate alone would not have served it.")
    if report.folds:
        st.caption(
            f"Cross-validated over {report.folds} folds: every judged query was held out once "
            f"({report.folds_seconds:.0f} s of the training's {report.seconds:.0f} s)."
        )
    if report.judgements_needed is not None:
        st.info(
            f"{needed_said(report.judged_queries, report.judgements_needed)}. Give 👍 to the "
            "documents that answer more of your searches, then train again."
        )
    st.table(
        [
            {"metric": name, "before": report.before[name], "after": report.after[name]}
            for name in ("ndcg@10", "recall@100", "mrr@10")
        ]
    )
    seen, held_seen, pooled = report.seen, report.held_out_seen, report.pooled
    if pooled and pooled["queries"]:
        low, high = pooled["interval"]
        st.markdown(
            f"On all **{pooled['queries']} judged queries**, each ranked by a model trained "
            f"without it: {pooled['wins']} better, {pooled['losses']} worse, {pooled['ties']} "
            f"the same; mean nDCG@10 change {pooled['gain']:+.4f}, interval {low:+.4f} to "
            f"{high:+.4f}. It must be better here with confidence, and worse with confidence "
            "on neither kind below."
        )
    if seen and seen["queries"] and held_seen:
        st.markdown(
            _compared(seen, held_seen, "about documents it was trained on")
            + ("" if pooled else " It must be better here with confidence (the two-part gate).")
        )
    if report.gate and report.held_out:
        said = _compared(report.gate, report.held_out, "about documents no training query cites")
        if seen and not pooled:
            said += " It must not be worse here with confidence."
        st.markdown(said)
    if standing := report.standing:
        low, high = standing["interval"]
        st.markdown(
            f"On **{standing['queries']} queries earlier versions held out**: "
            f"{standing['wins']} better, {standing['losses']} worse, {standing['ties']} the same; "
            f"mean change {standing['gain']:+.4f}, interval {low:+.4f} to {high:+.4f} (a "
            "candidate worse there with confidence is refused: it would forget)."
        )
    replayed = report.replayed
    if replayed and replayed["queries"]:
        st.caption(
            f"{replayed['queries']} earlier training queries ({replayed['pairs']} pairs) were "
            "mixed in so that the new version keeps what they taught."
        )
    st.caption(f"{report.pairs_used} training rows, {report.pairs_skipped} rows skipped")


def _served_result(served: ServedResult) -> None:
    st.success(f"Serving model version {served.version} (index generation {served.generation}, "
               f"backend {served.backend}).")  # fmt: skip


def _switch_result(result: SwitchResult) -> None:
    said = (f"Model version {result.version} from {result.base_model} ({result.dimension} "
            f"dimensions): {result.reason}")  # fmt: skip
    (st.success if result.served else st.warning)(said)
    if result.compared:
        st.caption(f"Dense nDCG@10 on {result.compared_on}: {result.before['ndcg@10']:.4f} "
                   f"before, {result.after['ndcg@10']:.4f} after.")  # fmt: skip


def _check_result(result: CheckResult) -> None:
    for line in result.repaired:
        st.info(f"Repaired: {line}")
    for name, ok, detail in result.checks:
        (st.success if ok else st.error)(f"{name}: {detail}")


def _removed_result(result: RemoveResult) -> None:
    st.success(f"Removed {result.folder} ({result.documents} documents) from the index.")


def _watch_result(result: WatchResult) -> None:
    st.caption(f"Watched until stopped: {result.runs} runs, each a job of its own.")


SHOW: dict[type, Callable] = {
    WatchResult: _watch_result,
    IndexSummary: _index_result,
    TrainingReport: _train_result,
    ServedResult: _served_result,
    SwitchResult: _switch_result,
    CheckResult: _check_result,
    RemoveResult: _removed_result,
}
