"""The status page: served model and generation, counts, last indexing, and the health check."""

from __future__ import annotations

import streamlit as st

from searchapp.health import check_store
from searchapp.operations import RepairOptions
from searchapp.status import store_status
from ui import jobs_panel
from ui.resources import database, settings


def render() -> None:
    st.header("Status")
    status = store_status(database())
    left, middle, right = st.columns(3)
    left.metric("Documents", status.documents)
    middle.metric("Chunks", status.chunks)
    right.metric("Index generation", status.generation_id or "-")
    st.markdown(
        f"**Model version** {status.version_id or '-'}: {status.version_name}  \n"
        f"pooling `{status.pooling or '-'}`, layer `{status.layer or 'final'}`, "
        f"backend `{status.backend or '-'}`  \n"
        f"fingerprint `{status.fingerprint or '-'}`"
    )
    last = status.last_indexed.strftime("%Y-%m-%d %H:%M UTC") if status.last_indexed else "never"
    st.markdown(f"**Last indexed** {last} · **home** `{settings().home}`")

    jobs_panel.panel(title="All jobs")

    st.subheader("Health check")
    report = check_store(settings(), database())
    for check in report.checks:
        (st.success if check.ok else st.error)(f"{check.name}: {check.detail}")
    if report.ok:
        st.caption("Everything agrees: SQL, the vector index file and the keyword index.")
    elif st.button("Repair"):
        jobs_panel.start("repair", RepairOptions())
