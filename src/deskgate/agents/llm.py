"""The analyst through an LLM: the same six typed functions, via pydantic-ai.

Each function is a pydantic-ai `Agent` whose output type is the step's model, so an
answer that does not validate is sent back with the errors and asked for again
(`output_retries` times). Prompts are versioned template files in `prompts/`
(`<function>.v<N>.md`: the instructions, then `---user---` and the user message);
`PROMPTS` pins the version each function uses. Tokens and cost are counted per call
and read by the desk per cycle.

Providers (mission.yaml `agents.model`): openai, anthropic, ollama, and any
OpenAI-compatible server (vLLM, llama.cpp) by `base_url`. Keys come from the
environment: `api_key_env`, else OPENAI_API_KEY / ANTHROPIC_API_KEY.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from jinja2 import Environment, StrictUndefined
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model
from pydantic_ai import Agent, NativeOutput, PromptedOutput, StructuredDict, ToolOutput
from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelContextWindowExceededError,
    ModelHTTPError,
    OutputTokenLimitExceeded,
    UnexpectedModelBehavior,
)
from pydantic_ai.messages import RetryPromptPart
from pydantic_ai.usage import RunUsage

from deskgate.agents import memory_tools
from deskgate.agents.analyst import ModelError, Usage
from deskgate.agents.cassette import Cassette
from deskgate.agents.memory_tools import MemoryAccess
from deskgate.agents.prompt_budget import PromptTooLong, TokenCounter, compact, fit, shown
from deskgate.agents.outputs import Draft, EndOfDayReview, Insight, MorningBrief, Principle, Revision
from deskgate.agents.view import DeskView
from deskgate.config import ModelSettings
from deskgate.domain.evaluation import CheckResult
from deskgate.memory.store import Memory

PROMPT_DIR = Path(__file__).parent / "prompts"
PROMPTS: dict[str, str] = {
    "socratic": "v3",
    "synthesise": "v3",
    "dispatch": "v3",
    "revise": "v3",
    "morning_brief": "v3",
    "end_of_day": "v3",
}
OUTPUTS = {
    "socratic": Annotated[list[Insight], Field(max_length=30)],
    "synthesise": Annotated[list[Principle], Field(max_length=20)],
    "dispatch": Annotated[list[Draft], Field(max_length=10)],
    "revise": Revision,
    "morning_brief": MorningBrief,
    "end_of_day": EndOfDayReview,
}
# Output tokens each step may use (agents.model.max_output_tokens overrides them all): enough for the
# bounded answers of outputs.py, and a stop for a model that rambles.
MAX_TOKENS = {"socratic": 900, "synthesise": 600, "dispatch": 900, "revise": 300, "morning_brief": 800, "end_of_day": 800}
OUTPUT_MODES = {"tool": ToolOutput, "native": NativeOutput, "prompted": PromptedOutput}
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
PROVIDER_ENDPOINTS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com", "ollama": "http://127.0.0.1:11434/v1"}


@dataclass(frozen=True)
class Prompt:
    function: str
    version: str
    instructions: str
    user: str


_jinja = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def load_prompt(function: str, version: str | None = None) -> Prompt:
    version = version or PROMPTS[function]
    path = PROMPT_DIR / f"{function}.{version}.md"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"prompt template {path.name} is missing from {PROMPT_DIR}") from None
    if "---user---" not in text:
        raise ModelError(f"prompt template {path.name} has no ---user--- line")
    common_path = PROMPT_DIR / f"_common.{version}.md"  # the shared preamble versions with the prompts
    common = (common_path if common_path.exists() else PROMPT_DIR / "_common.v1.md").read_text(encoding="utf-8").strip()
    system, user = text.split("---user---", 1)
    return Prompt(function, version, _jinja.from_string(system).render(common=common).strip(), user.strip())


def render(prompt: Prompt, **values) -> str:
    return _jinja.from_string(prompt.user).render(**values)


def build_model(settings: ModelSettings):
    """The pydantic-ai model for the mission's settings. Imports stay here, so the offline desk never loads an SDK."""
    provider = settings.provider
    key_env = settings.api_key_env or DEFAULT_KEY_ENV.get(provider)
    key = os.environ.get(key_env) if key_env else None
    if provider in ("openai", "anthropic") and not key:
        raise ModelError(f"agents.model.provider is {provider}: set {key_env} in the environment (or use provider: offline)")
    if provider == "anthropic":
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider

        return AnthropicModel(settings.name, provider=AnthropicProvider(api_key=key))
    from pydantic_ai.models.openai import OpenAIChatModel

    if provider == "ollama":
        from pydantic_ai.providers.ollama import OllamaProvider

        return OpenAIChatModel(settings.name, provider=OllamaProvider(base_url=settings.base_url or "http://127.0.0.1:11434/v1"))
    from pydantic_ai.providers.openai import OpenAIProvider

    if provider == "openai":
        return OpenAIChatModel(settings.name, provider=OpenAIProvider(api_key=key, base_url=settings.base_url))
    if provider == "openai-compatible":
        # Local servers usually take any key; send one so the SDK does not refuse to start.
        return OpenAIChatModel(settings.name, provider=OpenAIProvider(base_url=settings.base_url, api_key=key or "none"))
    raise ModelError(f"no LLM for provider {provider!r}")


def _data(text: str) -> str:
    """JSON for inside <data>: no '<' or '>' (recall text is the model's own earlier words), so nothing closes the tag."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


async def _read_through(_ctx, events) -> None:
    """Reads a streamed answer as it comes; pydantic-ai assembles it (LLMAnalyst.stream says why stream)."""
    async for _ in events:
        pass


def _is_retry(part) -> bool:
    """A part that sent an answer back to the model to be tried again (a validation failure, not a tool call)."""
    return isinstance(part, RetryPromptPart) or getattr(part, "outcome", None) == "retried"


def _json(models) -> str:
    return _data(json.dumps([m.model_dump(mode="json") for m in models]))


def tighten(schema, chars: int | None, items: int | None):
    """A JSON schema with every free-text string at most `chars` long and every array at most `items` long."""
    if isinstance(schema, list):
        return [tighten(x, chars, items) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: tighten(v, chars, items) for k, v in schema.items()}
    if chars and out.get("type") == "string" and "enum" not in out:
        out["maxLength"] = min(out.get("maxLength", chars), chars)
    if items and out.get("type") == "array":
        out["maxItems"] = min(out.get("maxItems", items), items)
    return out


def _view_json(view: DeskView) -> str:
    return _data(json.dumps(compact(view), ensure_ascii=False))


class Ready(BaseModel):
    ready: bool


class LLMAnalyst:
    def __init__(self, settings: ModelSettings, *, model=None, cassette: Cassette | None = None):
        self.settings = settings
        self.cassette = cassette  # records the answers, or plays them back instead of asking the model (cassette.py)
        self.model = model if model is not None else build_model(settings)
        # A model built from the settings is asked over a stream: a step that times out closes it, and a
        # server stops generating for a stream whose client left (llama.cpp does; it runs a plain request
        # to its end, holding its only slot for minutes). A model handed in (tests') is asked plainly.
        self.stream = model is None
        self.name = f"{settings.provider}:{settings.name}"[:64]
        self.endpoint = settings.base_url or PROVIDER_ENDPOINTS.get(settings.provider)  # named in errors and on the Agents page
        self.label = f"LLM {self.name} via pydantic-ai (prompts {'/'.join(sorted(set(PROMPTS.values())))})"
        self.usage = Usage()
        self.prompts = {fn: load_prompt(fn) for fn in PROMPTS}
        self.memory: Memory | None = None  # set by the desk: every step searches and edits memory through tools
        self.counter = TokenCounter(settings.base_url) if settings.prompt_tokens else None
        self._identity: str | None = None  # the uncut prompt of the step being asked (for cassettes)
        self.tools = settings.memory_tools if settings.memory_tools is not None else settings.output_mode == "tool"
        self._expect: dict[str, tuple | None] = {}  # fn -> (the real type's adapter, wrapped) while a tight schema is in use
        self._agents = {
            fn: Agent(
                self.model,
                output_type=OUTPUTS[fn],
                instructions=p.instructions,
                retries=settings.output_retries,
                name=f"deskgate-{fn}",
                deps_type=MemoryAccess,
                tools=memory_tools.TOOLS if self.tools else (),
            )
            for fn, p in self.prompts.items()
        }

    def _validated(self, fn: str, answer):
        """With a tight schema the model answers a plain dict: the real type checks it (ValueError if it fails)."""
        expect = self._expect.get(fn)
        if expect is None:
            return answer
        adapter, wrapped = expect
        return adapter.validate_python(answer.get("response") if wrapped else answer)

    def output_type(self, fn: str, citable: set[str] | None = None):
        """The step's output type in the configured mode. For the Socratic step the schema offers the ids the
        model was shown as an enum, so a constrained decoder (`native` on llama.cpp) cannot invent one; the
        answer is still validated as text, and an id a model invents anyway is dropped and counted
        (citations.py) instead of failing the whole step."""
        out = OUTPUTS[fn]
        if fn == "socratic" and citable:
            ids = sorted(citable)
            item = Annotated[str, Field(min_length=1, max_length=128, json_schema_extra={"enum": ids})]
            cited = create_model(
                "Insight", __base__=Insight,
                evidence=(Annotated[list[item], Field(min_length=1, max_length=12, description="ids of the data points this rests on")], ...),
            )
            out = Annotated[list[cited], Field(max_length=30)]
        if self.settings.answer_chars or self.settings.answer_items:
            return OUTPUT_MODES[self.settings.output_mode](self._tight(fn, out))
        self._expect[fn] = None
        return OUTPUT_MODES[self.settings.output_mode](out)

    def _tight(self, fn: str, out):
        """The output's JSON schema with shorter strings and lists (answer_chars, answer_items), as a plain
        dict type; the answer is validated against the real type afterwards (`_validated`), so a shorter
        answer is always a valid one, and one that breaks another rule is sent back."""
        adapter = TypeAdapter(out)
        schema = tighten(adapter.json_schema(), self.settings.answer_chars, self.settings.answer_items)
        wrapped = schema.get("type") != "object"
        if wrapped:
            defs = schema.pop("$defs", None)
            schema = {"type": "object", "properties": {"response": schema}, "required": ["response"], "additionalProperties": False,
                      **({"$defs": defs} if defs else {})}
        self._expect[fn] = (adapter, wrapped)
        return StructuredDict(schema, name=f"{fn}_answer")

    async def _fitted(self, fn: str, view: DeskView, **values) -> tuple[DeskView, str]:
        """The view as shown and the step's prompt, within agents.model.prompt_tokens (prompt_budget.py)."""
        def with_view(v: DeskView) -> str:
            return render(self.prompts[fn], view=v, view_json=_view_json(v), citable=sorted(v.citable()), **values)

        # A cassette knows a call by the prompt before any cut: the cut depends on the server's tokenizer,
        # which a played-back run does without.
        self._identity = with_view(shown(view))
        if self.cassette is not None and self.cassette.mode == "replay":
            return shown(view), self._identity
        try:
            return await fit(view, with_view, self.settings.prompt_tokens, self.counter, fixed=self.prompts[fn].instructions)
        except PromptTooLong as exc:
            error = f"{fn}: {exc}"
            if self.cassette is not None:  # recorded as this call's failure, which a played-back run repeats
                self.cassette.keep(fn, self.prompts[fn].version, self._identity, error=error)
            self._identity = None
            raise ModelError(error) from exc

    async def _call(self, fn: str, user: str, cite_from: set[str] | None = None):
        version = self.prompts[fn].version
        plain = TypeAdapter(OUTPUTS[fn])
        identity, self._identity = self._identity or user, None
        if self.cassette is not None and self.cassette.mode == "replay":
            answer, error = self.cassette.play(fn, version, identity, plain)
            self._account(fn, RunUsage(), failed=error is not None)
            if error is not None:
                raise ModelError(error)
            return answer
        try:
            answer = await self._ask(fn, user, cite_from)
        except ModelError as exc:
            if self.cassette is not None:
                self.cassette.keep(fn, version, identity, error=str(exc))
            raise
        if self.cassette is not None:
            self.cassette.keep(fn, version, identity, answer=[Insight.model_validate(i.model_dump()) for i in answer] if fn == "socratic" else answer,
                               adapter=plain)
        return answer

    async def _ask(self, fn: str, user: str, cite_from: set[str] | None = None):
        usage = RunUsage()
        max_tokens = self.settings.max_output_tokens or MAX_TOKENS[fn]
        output_type, history, extra = self.output_type(fn, cite_from), None, 0
        model_settings = {"max_tokens": max_tokens}
        if self.settings.temperature is not None:
            model_settings["temperature"] = self.settings.temperature
        deps = MemoryAccess(self.memory, self.name, fn)  # one step, one budget of memory tools, re-asks included
        deadline = time.monotonic() + self.settings.timeout_seconds  # and one timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the step's time ran out between re-asks")
                result = await self._agents[fn].run(
                    user, output_type=output_type, timeout=left, message_history=history, deps=deps, usage=usage, model_settings=model_settings,
                    event_stream_handler=_read_through if self.stream else None,
                )
                try:
                    answer = self._validated(fn, result.output)
                    break
                except ValidationError as exc:  # a tight schema's answer that breaks a rule it could not carry (a number's bounds)
                    if extra >= self.settings.output_retries:
                        raise UnexpectedModelBehavior(f"the answer broke the schema's rules: {exc.errors(include_url=False)[:3]}") from exc
                    extra += 1
                    history = result.all_messages()
                    user = f"That answer does not fit the schema: {exc.errors(include_url=False)[:5]}. Answer again, within every bound."
        except Exception as exc:  # noqa: BLE001 - every failure of the model's side fails the step, never the desk
            self._account(fn, usage, retries=max(0, usage.requests - 1), failed=True)
            raise ModelError(f"{fn}: {self.failure(exc, max_tokens, usage.requests)}") from exc
        retries = extra + sum(_is_retry(p) for m in result.all_messages() for p in getattr(m, "parts", ()))
        self._account(fn, usage, retries=retries)
        return answer

    async def check(self) -> str | None:
        """One tiny structured call in the configured output mode: None if the endpoint answers it with a
        valid structured answer (its content is not judged), else what is wrong (a dead server, a model
        that cannot answer in this mode)."""
        agent = Agent(self.model, output_type=OUTPUT_MODES[self.settings.output_mode](Ready), instructions="Set ready to true.",
                      retries=1, name="deskgate-check")
        settings = {"max_tokens": 64, **({"temperature": self.settings.temperature} if self.settings.temperature is not None else {})}
        try:
            await agent.run("Are you ready?", timeout=self.settings.timeout_seconds, model_settings=settings)
        except Exception as exc:  # noqa: BLE001 - whatever it is, it is what a person must see
            return f"the start-up check failed: {self.failure(exc, 64, 1)}"
        return None  # a valid structured answer, whatever it says: the endpoint works in this mode

    def failure(self, exc: BaseException, max_tokens: int, requests: int) -> str:
        """What went wrong, told apart: a token cap, a timeout, a prompt too long, an answer that never
        validated, the server's refusal, or no connection; always naming the endpoint."""
        where = self.endpoint or self.settings.provider
        tried = f"{requests} request(s)"
        if isinstance(exc, OutputTokenLimitExceeded):
            return f"the answer did not fit in {max_tokens} output tokens (max_output_tokens) at {where}; {tried}, not retried"
        if isinstance(exc, ModelContextWindowExceededError):
            return f"the prompt is longer than the model's context at {where} (set agents.model.prompt_tokens): {str(exc)[:200]}"
        if isinstance(exc, (TimeoutError,)) or "Timeout" in type(exc).__name__:
            return f"no answer within {self.settings.timeout_seconds:g} s from {where} (timeout_seconds); {tried}"
        if isinstance(exc, UnexpectedModelBehavior):
            return f"no valid answer from {where} after {max(0, requests - 1)} retries ({tried}): {str(exc)[:300]}"
        if isinstance(exc, ModelHTTPError):
            return f"the model server at {where} answered {exc.status_code}: {str(exc)[:300]}"
        if isinstance(exc, (ModelAPIError, OSError)):
            return f"no answer from the model at {where} ({type(exc).__name__}: {str(exc)[:300]})"
        # Anything else (pydantic-ai refusing the configured output mode for this model, say): said as it is.
        return f"the call to {where} could not be made ({type(exc).__name__}: {str(exc)[:300]})"

    def _account(self, fn: str, u: RunUsage, *, retries: int = 0, failed: bool = False) -> None:
        """Every call's tokens and cost, failed ones included (they are billed too)."""
        self.usage.calls += 1
        self.usage.requests += u.requests
        self.usage.retries += retries
        self.usage.input_tokens += u.input_tokens
        self.usage.output_tokens += u.output_tokens
        self.usage.by_function[fn] = self.usage.by_function.get(fn, 0) + 1
        if failed:
            self.usage.by_function[f"{fn}:failed"] = self.usage.by_function.get(f"{fn}:failed", 0) + 1
        cost = self._cost(u) if u.requests or u.input_tokens or u.output_tokens else 0.0
        self.usage.cost_usd = None if cost is None or self.usage.cost_usd is None else self.usage.cost_usd + cost

    def _cost(self, u) -> float | None:
        s = self.settings
        if s.input_usd_per_million is not None and s.output_usd_per_million is not None:
            return (u.input_tokens * s.input_usd_per_million + u.output_tokens * s.output_usd_per_million) / 1e6
        if s.provider in ("openai", "anthropic"):
            try:
                from genai_prices import calc_price

                return float(calc_price(u, s.name, provider_id=s.provider).total_price)
            except Exception:  # an unknown model: the cost is unknown, not zero
                return None
        return None

    async def socratic(self, view: DeskView) -> list[Insight]:
        shown, user = await self._fitted("socratic", view)
        answer = await self._call("socratic", user, cite_from=shown.citable())
        # The enum type is the schema's: the desk reads plain Insights.
        return [Insight.model_validate(i.model_dump()) for i in answer]

    async def synthesise(self, view: DeskView, insights: list[Insight]) -> list[Principle]:
        user = render(self.prompts["synthesise"], view=view, insights_json=_json(insights), positions_json=_json(view.positions),
                      limits_json=_data(view.limits.model_dump_json()))
        return await self._call("synthesise", user)

    async def dispatch(self, view: DeskView, principles: list[Principle]) -> list[Draft]:
        return await self._call("dispatch", (await self._fitted("dispatch", view, principles_json=_json(principles)))[1])

    async def revise(self, view: DeskView, draft: Draft, failed: list[CheckResult]) -> Revision:
        user = render(self.prompts["revise"], view=view, draft_json=_data(draft.model_dump_json()), failed_json=_json(failed),
                      positions_json=_json(view.positions), limits_json=_data(view.limits.model_dump_json()))
        return await self._call("revise", user)

    async def morning_brief(self, view: DeskView) -> MorningBrief:
        return await self._call("morning_brief", (await self._fitted("morning_brief", view))[1])

    async def end_of_day(self, view: DeskView) -> EndOfDayReview:
        return await self._call("end_of_day", (await self._fitted("end_of_day", view))[1])
