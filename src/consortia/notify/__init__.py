"""Notifications: per-member durable queues of sealed messages."""

from consortia.notify.messages import KINDS, Notice, seal_notice

__all__ = ["KINDS", "Notice", "seal_notice"]
