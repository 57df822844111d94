"""Jobs in the UI: pages start long work as jobs and watch them; they never do the work.

A job runs in a ``searchapp`` process of its own (``searchapp.jobs``), so it goes on when the page
is left, the tab reloaded or closed, or the UI server stopped. Every browser session sees the same
jobs: the panel reads them from the database, and refreshes itself every second while one runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import streamlit as st

from searchapp import jobs
from searchapp.errors import SearchappError
from searchapp.status import by_reason
from ui.resources import database, markdown_text, settings

REFRESH_SECONDS = 1.0
RECENT = 5


def start(arguments: Sequence[str]) -> int | None:
    """Start ``searchapp ARGUMENTS`` as a job; shows the error and returns None if refused."""
    try:
        job_id = jobs.start(settings(), database(), arguments)
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
            RESULTS.get(view.kind, _raw)(view.result)


def _act(action: Callable[[], object]) -> None:
    try:
        action()
    except SearchappError as error:
        st.error(str(error))
    else:
        st.rerun(scope="fragment")


def _index_result(result: dict) -> None:
    ignored = result.get("ignored", [])  # absent from the results of older runs
    figures = [
        ("Added", result["added"]),
        ("Updated", result["updated"]),
        ("Unchanged", result["unchanged"]),
        ("Failed", len(result["failed"])),
        ("Skipped", len(result["skipped"])),
        ("Ignored", len(ignored)),
        ("Removed", result["removed"]),
        ("Chunks embedded", result["chunks"]),
    ]
    for column, (label, value) in zip(st.columns(len(figures)), figures, strict=True):
        column.metric(label, value)
    files = result.get("files")
    st.caption(f"{files} files accounted for in {result['seconds']:.1f} s" if files is not None
               else f"{result['seconds']:.1f} s")  # fmt: skip
    if result["failed"]:
        st.error(f"{len(result['failed'])} files could not be indexed:")
        _by_reason(result["failed"])
    if result["skipped"]:
        st.markdown(f"**{len(result['skipped'])} skipped**, not documents searchapp reads:")
        _by_reason(result["skipped"])
    if ignored:
        st.markdown(f"**{len(ignored)} ignored** by a rule:")
        _by_reason(ignored)


def _by_reason(entries: list[dict]) -> None:
    """One line per reason ("12 files: needs OCR, and OCR is off"), its files in an expander."""
    groups = by_reason((entry["path"], entry["reason"]) for entry in entries)
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


def _train_result(result: dict) -> None:
    (st.success if result["promoted"] else st.warning)(
        f"Version {result['version']}: {'promoted' if result['promoted'] else 'not promoted'} — "
        f"{result['reason']}"
    )
    if result["promoted"] and not result.get("passed_gate", True):
        st.caption("Served because you asked to: the gate alone would not have served it.")
    st.table(
        [
            {"metric": name, "before": result["before"][name], "after": result["after"][name]}
            for name in ("ndcg@10", "recall@100", "mrr@10")
        ]
    )
    seen, held_seen = result.get("seen"), result.get("held_out_seen")
    if seen and seen["queries"] and held_seen:
        st.markdown(
            _compared(seen, held_seen, "about documents it was trained on")
            + " It must be better here with confidence (the two-part gate)."
        )
    gate, held_out = result.get("gate"), result.get("held_out")
    if gate and held_out:
        said = _compared(gate, held_out, "about documents that no training query cites")
        if seen:
            said += " It must not be worse here with confidence."
        st.markdown(said)
    standing = result.get("standing")
    if standing:
        low, high = standing["interval"]
        st.markdown(
            f"On **{standing['queries']} queries earlier versions held out**: "
            f"{standing['wins']} better, {standing['losses']} worse, {standing['ties']} the same; "
            f"mean change {standing['gain']:+.4f}, interval {low:+.4f} to {high:+.4f} (a "
            "candidate worse there with confidence is refused: it would forget)."
        )
    replayed = result.get("replayed")
    if replayed and replayed["queries"]:
        st.caption(
            f"{replayed['queries']} earlier training queries ({replayed['pairs']} pairs) were "
            "mixed in so that the new version keeps what they taught."
        )
    st.caption(f"{result['pairs_used']} training rows, {result['pairs_skipped']} rows skipped")


def _versions_result(result: list) -> None:
    served = next((row for row in result if row["status"] == "active"), None)
    if served is not None:
        st.success(f"Serving model version {served['id']}: {served['name']}")


def _repair_result(result: dict) -> None:
    for check in result["checks"]:
        (st.success if check["ok"] else st.error)(f"{check['check']}: {check['detail']}")


def _raw(result: dict | list) -> None:
    st.json(result, expanded=False)


RESULTS: dict[str, Callable] = {
    "index": _index_result,
    "import": _index_result,
    "train": _train_result,
    "promote": _versions_result,
    "rollback": _versions_result,
    "repair": _repair_result,
}
