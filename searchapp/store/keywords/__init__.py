"""Keyword search over the chunks the vectors cover: one interface (``base.KeywordStore``), one
analyzer for every backend (``analyzer``), one file per backend (``sqlite``: FTS5 with the Tantivy
index beside it; ``postgres``: BM25 over PostgreSQL postings), and ``factory.keyword_store``."""
