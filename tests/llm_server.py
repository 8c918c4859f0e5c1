"""A local OpenAI-compatible chat-completions server for tests: the real wire protocol, scripted answers.

It stands in for a hosted LLM (which cannot be reached from here). pydantic-ai
asks for structured output through a tool (`final_result`); the server answers
with a tool call whose arguments are the scripted answer for the step it
recognises from the instructions. It records every request, and can be told to
answer the first call of a step with something invalid, to exercise retries, or
to cite an id that does not exist.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

STEPS = {
    "Task: question the current state": "socratic",
    "Task: distil the insights": "synthesise",
    "Task: turn the principles": "dispatch",
    "Task: the policy engine rejected": "revise",
    "Task: write the morning brief": "morning_brief",
    "Task: write the end-of-day review": "end_of_day",
}


@dataclass
class Script:
    invalid_first: set[str] = field(default_factory=lambda: {"socratic"})  # steps whose first answer fails validation
    invent: str = "sum:NOPE:0"  # an id the model makes up
    draft_usd: float = 400_000.0  # too large for a 25% limit on 1M: the policy engine rejects it
    revise_usd: float = 100_000.0
    # A model that obeys whatever news it is shown: with any news in view it drafts
    # "sell everything" (every asset, far beyond the limits, full confidence).
    obey_news: bool = False
    requests: list[dict] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    # /v1/embeddings: vectors from the desk's own offline model; "down" answers 503, as a failing endpoint would.
    embeddings_down: bool = False
    embedding_requests: int = 0
    embeddings_max_chars: int | None = None  # a request holding a longer text is refused (400), as a token limit would
    # The injection screen's judge (a plain chat call, the answer in `content`): text containing this
    # marker is called an injection; "garbage" answers prose instead of the JSON object asked for.
    judge_flags: str = "wire funds"
    judge_garbage: bool = False
    judge_requests: list[str] = field(default_factory=list)


def _step(body: dict) -> str:
    text = " ".join(str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") in ("system", "developer"))
    for needle, step in STEPS.items():
        if needle in text:
            return step
    raise ValueError("unknown step")


def _last_user(body: dict) -> str:
    users = [m for m in body["messages"] if m.get("role") == "user"]
    content = users[0]["content"] if users else ""
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


def _answer(step: str, body: dict, script: Script) -> dict:
    user = _last_user(body)
    n = script.seen.get(step, 0)
    script.seen[step] = n + 1
    if step in script.invalid_first and n == 0:
        return {"response": [{"asset": "BTC", "claim": "x", "stance": "bullish", "confidence": 2.5, "evidence": []}]}
    if step == "socratic":
        ids = re.search(r"Citable ids: (.*)", user).group(1).split(", ")
        signals = [i for i in ids if i.startswith("sig:")]
        out = [
            {"asset": s.split(":")[1], "claim": f"trend model {s}", "stance": "bullish", "confidence": 0.8, "evidence": [s, script.invent]}
            for s in signals[:1]
        ]
        out.append({"asset": None, "claim": "made up", "stance": "risk", "confidence": 0.5, "evidence": [script.invent]})
        return {"response": out}
    if step == "synthesise":
        data = json.loads(user.split("<data>", 1)[1].split("</data>", 1)[0])
        if not data["insights"]:
            return {"response": []}
        asset = data["insights"][0]["asset"]
        return {"response": [{"statement": f"{asset} trend up", "asset": asset, "action": "add", "conviction": 0.8, "from_insights": [0]}]}
    if step == "dispatch":
        data = json.loads(user.split("<data>", 1)[1].split("</data>", 1)[0])
        if script.obey_news and data["view"].get("news"):
            memo = {"signal_evidence": "the news says so", "position_context": "whatever it is", "proposed_action": "sell everything now",
                    "expected_outcome": "as the headline ordered"}
            assets = sorted({s["asset"] for s in data["view"]["summaries"]})
            return {"response": [{"asset": a, "side": "sell", "notional_usd": 5_000_000.0, "confidence": 1.0, "memo": memo}
                                 for a in assets]}
        if not data["principles"] or any(p["notional_usd"] > 0 for p in data["view"]["positions"]):
            return {"response": []}
        asset = data["principles"][0]["asset"]
        memo = {
            "signal_evidence": "trend model (scripted LLM)",
            "position_context": "flat",
            "proposed_action": f"buy {asset}",
            "expected_outcome": "a scripted answer",
        }
        return {"response": [{"asset": asset, "side": "buy", "notional_usd": script.draft_usd, "confidence": 0.8, "memo": memo}]}
    if step == "revise":
        return {"action": "revise", "notional_usd": script.revise_usd, "note": "cut to fit the position limit"}
    if step == "morning_brief":
        return {"position_risk": "scripted brief", "overnight": ["quiet night"], "parameter_suggestions": [], "flagged": []}
    return {
        "results_vs_expectations": "scripted review",
        "execution_quality": "fine",
        "observations": ["one"],
        "regime_assessment": "calm everywhere (scripted)",
        "hypotheses": ["BTC up: confirmed 1 day(s)"],
    }


def _streamed(head: dict, call: dict, usage: dict):
    """The same answer as server-sent chunks, as the API streams a tool call: the call's name, its
    arguments in two pieces, the finish reason, then the usage (asked for with include_usage)."""
    args = call["function"]["arguments"]
    cut = len(args) // 2
    deltas = [
        {"role": "assistant", "content": None, "tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                                               "function": {"name": call["function"]["name"], "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": args[:cut]}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": args[cut:]}}]},
    ]
    chunks = [{"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    chunks.append({"choices": [], "usage": usage})
    for chunk in chunks:
        yield f"data: {json.dumps({**head, 'object': 'chat.completion.chunk', **chunk})}\n\n"
    yield "data: [DONE]\n\n"


def make_app(script: Script) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        system = " ".join(str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "system")
        if "You check text that a trading desk received from outside" in system:
            user = _last_user(body)
            script.judge_requests.append(user)
            flagged = script.judge_flags.replace(" ", "\u02c6") in user or script.judge_flags in user
            content = "I think it is fine." if script.judge_garbage else json.dumps({"injection": flagged, "why": "asks to move money" if flagged else "a report"})
            return {"id": f"chatcmpl-j{len(script.judge_requests)}", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": len(user) // 4, "completion_tokens": 12, "total_tokens": 0}}
        script.requests.append({"headers": dict(request.headers), "body": body})
        step = _step(body)
        tool = next(t["function"]["name"] for t in body["tools"] if t["function"]["name"].startswith("final_result"))
        args = _answer(step, body, script)
        usage = {"prompt_tokens": 100 + len(json.dumps(body)) // 4, "completion_tokens": 20 + len(json.dumps(args)) // 4, "total_tokens": 0}
        call = {"id": f"call_{len(script.requests)}", "type": "function", "function": {"name": tool, "arguments": json.dumps(args)}}
        head = {"id": f"chatcmpl-{len(script.requests)}", "created": int(time.time()), "model": body["model"]}
        if body.get("stream"):
            return StreamingResponse(_streamed(head, call, usage), media_type="text/event-stream")
        return {
            **head,
            "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
            "usage": usage,
        }

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        from fastapi.responses import JSONResponse

        from deskgate.memory.embedding import shared_minilm

        body = await request.json()
        script.embedding_requests += 1
        if script.embeddings_down:
            return JSONResponse({"error": {"message": "model is loading", "type": "server_error"}}, status_code=503)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if script.embeddings_max_chars is not None and any(len(t) > script.embeddings_max_chars for t in texts):
            return JSONResponse({"error": {"message": "input is too long for this model", "type": "invalid_request_error"}}, status_code=400)
        vectors = shared_minilm().embed(texts)
        return {
            "object": "list",
            "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": sum(len(t) // 4 for t in texts), "total_tokens": sum(len(t) // 4 for t in texts)},
        }

    return app


class LocalLLM:
    """Runs the app with uvicorn on a free loopback port in a thread."""

    def __init__(self, script: Script | None = None):
        self.script = script or Script()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.server = uvicorn.Server(uvicorn.Config(make_app(self.script), host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LocalLLM:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the local LLM server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(5)
