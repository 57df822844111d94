"""Where a home's vectors live and how they are searched: one interface (``base.VectorStore``),
one file per backend (``faiss``: a FAISS file per generation beside SQLite; ``pgvector``: the rows
themselves, on PostgreSQL), and ``factory.vector_store`` that picks the backend of a database."""
