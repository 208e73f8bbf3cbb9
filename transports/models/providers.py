"""The three model providers the hub can call, and the variables that configure each: its key,
where its API answers (a proxy or an emulator), which model. The summarizers and the model
adapters read them from here, so one set of variables configures both."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    name: str  # the spec's model name: claude, chatgpt, gemini
    vendor: str  # the spec's provider: anthropic, openai, google
    key_var: str
    url_var: str
    sdk_url_var: str  # the SDK's own base-URL variable ('' when it has none we pass on)
    model_var: str
    default_model: str

    def api_key(self, env: Mapping[str, str]) -> str:
        return env.get(self.key_var) or ""

    def base_url(self, env: Mapping[str, str]) -> str | None:
        return env.get(self.url_var) or (env.get(self.sdk_url_var) if self.sdk_url_var else None)

    def model(self, env: Mapping[str, str]) -> str:
        return env.get(self.model_var) or self.default_model


CLAUDE = Provider(
    "claude",
    "anthropic",
    "ANTHROPIC_API_KEY",
    "CHITTY_ANTHROPIC_API_URL",
    "ANTHROPIC_BASE_URL",
    "CHITTY_ANTHROPIC_MODEL",
    "claude-sonnet-4-5",
)
CHATGPT = Provider(
    "chatgpt",
    "openai",
    "OPENAI_API_KEY",
    "CHITTY_OPENAI_API_URL",
    "OPENAI_BASE_URL",
    "CHITTY_OPENAI_MODEL",
    "gpt-4.1-mini",
)
GEMINI = Provider(
    "gemini",
    "google",
    "GOOGLE_AI_API_KEY",
    "CHITTY_GEMINI_API_URL",
    "",
    "CHITTY_GEMINI_MODEL",
    "gemini-2.5-flash",
)
PROVIDERS = (CLAUDE, CHATGPT, GEMINI)
