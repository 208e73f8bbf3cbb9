"""Authentication and authorization core: tokens, request signing, OIDC, rate limits, scopes."""
