"""What the app does, independent of how it is called (code, admin, commands, tasks)."""

from .balance import check_balance
from .resend import resend_messages
from .sending import send_bulk, send_sms

__all__ = ["check_balance", "resend_messages", "send_bulk", "send_sms"]
