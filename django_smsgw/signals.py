from django.dispatch import Signal

# Sent once per real change of a message's status, whatever caused it, after the change is
# committed. Arguments: message (SmsMessage), old_status, new_status (Status values).
message_status_changed = Signal()
