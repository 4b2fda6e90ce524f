"""Who a connection belongs to: a token verified into a user and an organization.

:class:`JwtVerifier` checks JSON Web Tokens (HS256 with a shared secret, RS256/ES256 with a
public key) with PyJWT; any object with the :class:`TokenVerifier` method does instead
(sessions, an identity provider's introspection endpoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tether.realtime.channels import BadChannel, check_id


class TokenRejected(Exception):
    """The token is not valid; the message says why (logged, never sent to the client)."""


class TokenExpired(TokenRejected):
    """The token was valid once; a client with a fresh one may connect."""


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    org: str | None = None
    expires_at: float | None = None  # epoch seconds; the connection ends then

    def __post_init__(self) -> None:
        try:
            check_id(self.user, "the token's user")
            if self.org is not None:
                check_id(self.org, "the token's organization")
        except BadChannel as exc:
            raise TokenRejected(str(exc)) from None


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Identity:
        """The identity in ``token``; :class:`TokenRejected` (or TokenExpired) if none."""


class JwtVerifier:
    """JWTs whose ``sub`` is the user and ``org_claim`` (default ``org``) the organization.

    ``exp`` is required unless ``require_exp=False``; ``audience`` and ``issuer`` are checked
    when given. Only the listed ``algorithms`` are accepted (never ``none``).
    """

    def __init__(
        self,
        key: str | bytes,
        *,
        algorithms: Sequence[str] = ("HS256",),
        org_claim: str = "org",
        audience: str | None = None,
        issuer: str | None = None,
        require_exp: bool = True,
        leeway: float = 0.0,
    ) -> None:
        import jwt  # the realtime extra

        if not algorithms or any(a.lower() == "none" for a in algorithms):
            raise ValueError("JwtVerifier: name the algorithms to accept; 'none' is refused")
        self._jwt = jwt
        self.key = key
        self.algorithms = list(algorithms)
        self.org_claim = org_claim
        self.audience = audience
        self.issuer = issuer
        self.require = ["sub", "exp"] if require_exp else ["sub"]
        self.leeway = leeway

    async def verify(self, token: str) -> Identity:
        jwt = self._jwt
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise TokenRejected("no token, or one longer than 8192 characters")
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": self.require},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired("the token has expired") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"invalid token: {exc}") from None
        org = claims.get(self.org_claim)
        exp = claims.get("exp")
        return Identity(
            user=_text(claims["sub"], "sub"),
            org=None if org is None else _text(org, self.org_claim),
            expires_at=float(exp) if isinstance(exp, int | float) else None,
        )


def _text(value: object, claim: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TokenRejected(f"claim {claim!r} must be a string")
