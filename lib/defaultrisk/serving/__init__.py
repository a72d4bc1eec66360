"""The HTTP service: one customer (or a small batch) scored on demand, as the nightly job would score it.

`app.create_app` builds the FastAPI application, `server.serve` runs it under uvicorn; both need the
`serve` extra, so this package imports neither until asked.
"""
