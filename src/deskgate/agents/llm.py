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
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
from jinja2 import Environment, StrictUndefined
from pydantic import Field
from pydantic_ai import Agent
from pydantic_ai.exceptions import AgentRunError, ModelHTTPError, UnexpectedModelBehavior
from pydantic_ai.messages import RetryPromptPart
from pydantic_ai.usage import RunUsage

from deskgate.agents import memory_tools
from deskgate.agents.analyst import ModelError, Usage
from deskgate.agents.memory_tools import MemoryAccess
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


LLM_SINCE_MAX = 48  # summaries since the last cycle shown to a model (the newest); the offline analyst sees all
LLM_FILLS_MAX = 50
LLM_NEWS_MAX = 10  # the newest news items shown to a model (each at most ~4,000 characters)


def _data(text: str) -> str:
    """JSON for inside <data>: no '<' or '>' (recall text is the model's own earlier words), so nothing closes the tag."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


def _is_retry(part) -> bool:
    """A part that sent an answer back to the model to be tried again (a validation failure, not a tool call)."""
    return isinstance(part, RetryPromptPart) or getattr(part, "outcome", None) == "retried"


def _json(models) -> str:
    return _data(json.dumps([m.model_dump(mode="json") for m in models]))


def _view_json(view: DeskView) -> str:
    trimmed = view.model_copy(
        update={"since_last_cycle": view.since_last_cycle[-LLM_SINCE_MAX:], "fills": view.fills[-LLM_FILLS_MAX:], "news": view.news[-LLM_NEWS_MAX:]}
    )
    return _data(trimmed.model_dump_json())


class LLMAnalyst:
    def __init__(self, settings: ModelSettings, *, model=None):
        self.settings = settings
        self.model = model if model is not None else build_model(settings)
        self.name = f"{settings.provider}:{settings.name}"[:64]
        self.endpoint = settings.base_url or PROVIDER_ENDPOINTS.get(settings.provider)  # named in errors and on the Agents page
        self.label = f"LLM {self.name} via pydantic-ai (prompts {'/'.join(sorted(set(PROMPTS.values())))})"
        self.usage = Usage()
        self.prompts = {fn: load_prompt(fn) for fn in PROMPTS}
        self.memory: Memory | None = None  # set by the desk: every step searches and edits memory through tools
        self._agents = {
            fn: Agent(
                self.model,
                output_type=OUTPUTS[fn],
                instructions=p.instructions,
                retries=settings.output_retries,
                name=f"deskgate-{fn}",
                deps_type=MemoryAccess,
                tools=memory_tools.TOOLS,
            )
            for fn, p in self.prompts.items()
        }

    async def _call(self, fn: str, **values):
        prompt = self.prompts[fn]
        usage = RunUsage()
        try:
            result = await self._agents[fn].run(
                render(prompt, **values), timeout=self.settings.timeout_seconds, deps=MemoryAccess(self.memory, self.name, fn), usage=usage
            )
        except UnexpectedModelBehavior as exc:
            self._account(fn, usage, failed=True)
            raise ModelError(f"{fn} ({prompt.function}.{prompt.version}): no valid answer after {self.settings.output_retries} retries: {exc}") from exc
        except ModelHTTPError as exc:
            self._account(fn, usage, failed=True)
            raise ModelError(f"{fn}: the model server answered {exc.status_code}: {str(exc)[:300]}") from exc
        except (AgentRunError, httpx.HTTPError, TimeoutError, OSError) as exc:
            # Connection refused, timeouts, usage limits: the cycle fails cleanly, the desk goes on.
            self._account(fn, usage, failed=True)
            raise ModelError(f"{fn}: no answer from the model ({type(exc).__name__}: {str(exc)[:300]})") from exc
        retries = sum(_is_retry(p) for m in result.all_messages() for p in getattr(m, "parts", ()))
        self._account(fn, result.usage, retries=retries)
        return result.output

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
        return await self._call("socratic", view=view, view_json=_view_json(view), citable=sorted(view.citable()))

    async def synthesise(self, view: DeskView, insights: list[Insight]) -> list[Principle]:
        return await self._call(
            "synthesise", view=view, insights_json=_json(insights), positions_json=_json(view.positions), limits_json=_data(view.limits.model_dump_json())
        )

    async def dispatch(self, view: DeskView, principles: list[Principle]) -> list[Draft]:
        return await self._call("dispatch", view=view, principles_json=_json(principles), view_json=_view_json(view))

    async def revise(self, view: DeskView, draft: Draft, failed: list[CheckResult]) -> Revision:
        return await self._call(
            "revise", view=view, draft_json=_data(draft.model_dump_json()), failed_json=_json(failed),
            positions_json=_json(view.positions), limits_json=_data(view.limits.model_dump_json()),
        )

    async def morning_brief(self, view: DeskView) -> MorningBrief:
        return await self._call("morning_brief", view=view, view_json=_view_json(view))

    async def end_of_day(self, view: DeskView) -> EndOfDayReview:
        return await self._call("end_of_day", view=view, view_json=_view_json(view))
