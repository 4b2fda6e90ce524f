"""What a service refuses, in the desk's own words: no HTTP here. ``errors.install`` maps each
kind to its status (404, 422, 409) and answers a problem document with the message as detail."""

from __future__ import annotations


class DeskError(Exception):
    """A request the desk refuses; the message says why, for the caller."""


class NotFound(DeskError):
    """No such record in the caller's tenant (another tenant's rows are not found either)."""


class RuleBroken(DeskError):
    """The request is well formed but breaks a business rule (a buyer posting an offer)."""


class NotEnoughLeft(DeskError):
    """A match asks for more than the offer or the need has left."""
