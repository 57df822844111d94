"""Who may use the UI: where ``searchapp ui`` hands it a token (``$SEARCHAPP_UI_TOKEN``, needed
beyond loopback), every browser session must give it once before any page is shown."""

from __future__ import annotations

import os
import secrets
import time

import streamlit as st

from searchapp.settings import UI_TOKEN_ENV

_GIVEN = "access_token_given"
WRONG_TOKEN_DELAY = 1.0  # seconds a wrong token waits: guessing is slow


def require_token() -> None:
    """Ask for the UI's token, and stop the page until it is given; no-op without one."""
    token = os.environ.get(UI_TOKEN_ENV)
    if not token or st.session_state.get(_GIVEN):
        return
    st.title("searchapp")
    with st.form("access"):
        given = st.text_input(
            "Token", type="password",
            help="The token `searchapp ui` was started with ($SEARCHAPP_UI_TOKEN).",
        )  # fmt: skip
        submitted = st.form_submit_button("Open")
    if submitted:
        if secrets.compare_digest(given.encode(), token.encode()):
            st.session_state[_GIVEN] = True
            st.rerun()
        time.sleep(WRONG_TOKEN_DELAY)
        st.error("That is not the token: ask whoever started searchapp's UI for it.")
    st.stop()
