"""The FastAPI application: `/predict`, `/predict/batch`, `/health` and the generated `/docs`.

Every answer is JSON. What decides a refusal is `checks.check_table` (the nightly job's rules and
reasons); the body's size, its JSON and its fields are checked first, each with its own 4xx.
"""

from __future__ import annotations

import asyncio
import gc
from functools import partial
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from defaultrisk import __version__
from defaultrisk.serving import openapi
from defaultrisk.serving.options import MAX_BATCH, MAX_BODY_BYTES, SHIPPED_REASONS, Reasons
from defaultrisk.serving.request import BadRequest, check_shape, customers_table, parse_json
from defaultrisk.serving.scorer import Scorer, problems

_CUSTOMER_REF = "#/components/schemas/Customer"


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(413, f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect as exc:  # nobody is left to answer; not a server error
        raise BadRequest(400, "client disconnected before sending the whole body") from exc
    return b"".join(chunks)


class Together:
    """Single customers scored together: each `/predict` joins the customers already waiting.

    While one group is being scored, the requests that arrive queue up; the next group takes all of
    them (up to `max_batch`), so the checks' and the model's fixed cost per call is paid once per
    group, not per customer, and no request waits for a timer. A customer's answer does not depend on
    its group: the checks and the model work row by row, and customers of separate requests are never
    each other's duplicates.
    """

    def __init__(self, scorer: Scorer, max_batch: int) -> None:
        self.scorer, self.max_batch = scorer, max_batch
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    async def answer(self, customer: dict) -> dict | str:
        """The customer's prediction, or the reason it is refused for."""
        if self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._score_groups())
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((customer, future))
        return await future

    async def _score_groups(self) -> None:
        while True:
            group = [await self._queue.get()]
            # Requests the server has already read get to join: let them run until no more arrive
            # (one pass of the event loop each; a lone request costs one pass).
            waiting = -1
            while waiting != self._queue.qsize() and self._queue.qsize() < self.max_batch:
                waiting = self._queue.qsize()
                await asyncio.sleep(0)
            while len(group) < self.max_batch and not self._queue.empty():
                group.append(self._queue.get_nowait())
            customers = [customer for customer, _ in group]
            try:
                answers = self.scorer.answers(customers_table(customers), copies=np.ones(len(group)))
            except Exception as exc:  # every waiting request fails with it, as it would alone
                answers = [exc] * len(group)
            for (_, future), answer in zip(group, answers, strict=True):
                if future.done():  # the client went away
                    continue
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)


def _refused(exc: BadRequest) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status)


def create_app(
    model_dir: str | Path,
    reasons: Reasons = SHIPPED_REASONS,
    max_batch: int = MAX_BATCH,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The service for one model directory, loaded and checked now (a bad model fails here)."""
    scorer = Scorer.load(model_dir, reasons)
    app = FastAPI(
        title="defaultrisk", version=__version__, summary="Probability of default, one customer on demand"
    )
    app.add_exception_handler(BadRequest, lambda _request, exc: _refused(exc))
    body_of = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _CUSTOMER_REF}}},
        }
    }
    batch_body = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": openapi.batch_schema(_CUSTOMER_REF, max_batch)}},
        }
    }
    _add_predict(app, Together(scorer, max_batch), body_of, max_body_bytes)
    _add_batch(app, scorer, batch_body, (max_batch, max_body_bytes))
    _add_health(app, scorer, max_batch)
    app.openapi = partial(_schema, app)
    # What is loaded now lives as long as the service: frozen out of the collector's sight, so a
    # full collection no longer walks it (168,000 objects, 72 ms each time; one every few seconds
    # under load, a stall every request behind it waited for).
    gc.collect()
    gc.freeze()
    return app


_ERRORS = {400: {"model": openapi.Problem}, 413: {"model": openapi.Problem}}


def _add_predict(app: FastAPI, together: Together, body_of: dict, max_body_bytes: int) -> None:

    @app.post(
        "/predict",
        openapi_extra=body_of,
        responses={200: {"model": openapi.Prediction}, 422: {"model": openapi.Rejected}, **_ERRORS},
    )
    async def predict(request: Request) -> JSONResponse:
        """Score one customer; 422 with the nightly job's reasons when the job would reject it."""
        customer = parse_json(await _body(request, max_body_bytes))
        check_shape(customer)
        answer = await together.answer(customer)
        if isinstance(answer, str):
            return JSONResponse(
                {"detail": "customer rejected", "reason": answer, "problems": problems(answer)}, 422
            )
        return JSONResponse(answer)


def _add_batch(app: FastAPI, scorer: Scorer, batch_body: dict, limits: tuple[int, int]) -> None:
    max_batch, max_body_bytes = limits

    @app.post(
        "/predict/batch",
        openapi_extra=batch_body,
        responses={200: {"model": openapi.Predictions}, 422: {"model": openapi.BatchRejected}, **_ERRORS},
    )
    async def predict_batch(request: Request) -> JSONResponse:
        """Score up to the configured number of customers, all or none: any rejected row refuses the batch."""
        body = parse_json(await _body(request, max_body_bytes))
        customers = body.get("customers") if isinstance(body, dict) and set(body) == {"customers"} else None
        if not isinstance(customers, list) or not customers:
            raise BadRequest(422, 'a batch is {"customers": [customer, ...]} with at least one customer')
        if len(customers) > max_batch:
            raise BadRequest(422, f"{len(customers)} customers: at most {max_batch} per request")
        for i, customer in enumerate(customers):
            check_shape(customer, f"customers[{i}]")
        outcome = scorer.score(customers_table(customers))
        if outcome.rejected:
            detail = f"{len(outcome.rejected)} of {len(customers)} customers rejected"
            return JSONResponse({"detail": detail, "rejected": outcome.rejected}, 422)
        return JSONResponse({"predictions": outcome.predictions})


def _add_health(app: FastAPI, scorer: Scorer, max_batch: int) -> None:
    @app.get("/health", response_model=openapi.Health)
    async def health() -> dict:
        """The model being served and when it was loaded."""
        manifest = scorer.manifest
        return {
            "status": "ok",
            "model_version": scorer.model.version,
            "loaded_at": scorer.loaded_at,
            "model_created_at": manifest.get("created_at"),
            "threshold": scorer.model.threshold,
            "reason_codes": scorer.reasons.codes,
            "reason_rows": scorer.reasons.rows,
            "max_batch": max_batch,
        }


def _schema(app: FastAPI) -> dict:
    """The OpenAPI document, with the Customer schema generated from the feature list."""
    if app.openapi_schema is None:
        spec = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        spec.setdefault("components", {}).setdefault("schemas", {})["Customer"] = (
            openapi.customer_model().model_json_schema()
        )
        app.openapi_schema = spec
    return app.openapi_schema
