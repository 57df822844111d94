"""What every page shares: the home's settings, database and searcher, loaded once per process."""

from __future__ import annotations

import os
import re

import streamlit as st

from searchapp.search import Searcher
from searchapp.settings import HOME_ENV, Settings
from searchapp.store.database import Database


@st.cache_resource(show_spinner="Loading the model…")
def get_searcher(home: str | None) -> Searcher:
    """One Searcher (model, vector index) per process, shared by every browser session."""
    settings = Settings.load(home)
    return Searcher(settings, Database(settings.database_url, lock_path=settings.write_lock_path))


def searcher() -> Searcher:
    return get_searcher(os.environ.get(HOME_ENV))


def settings() -> Settings:
    return searcher().settings


def database() -> Database:
    return searcher().db


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#<>$~|+\-])")


def markdown_text(text: str) -> str:
    """Escape document text for Markdown, keeping the ``**highlight**`` markers of snippets."""
    return "**".join(_MARKDOWN_SPECIAL.sub(r"\\\1", part) for part in text.split("**"))
