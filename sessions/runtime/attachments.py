"""A consumer's handle on a session: held here (local) or on another node (remote).

The consumer calls the same methods either way; a remote attachment turns them into messages
to the home node (sessions.runtime.messages). Ending the session from the terminal goes through
the same service as the REST API (sessions.services.lifecycle.terminate_session), whichever
node the terminal is on.
"""

import logging

from channels.db import database_sync_to_async

from pam.exceptions import ServiceError
from pam.outages import is_outage
from sessions import policy
from sessions.choices import Access, Status
from sessions.runtime import messages
from sessions.services import lifecycle

logger = logging.getLogger(__name__)


@database_sync_to_async
def _terminate(session_id, user, ip):
    """End the session as ``user``; False when they may not (their role changed meanwhile)."""
    session = lifecycle.load_session(session_id)
    if session is None:
        return False
    try:
        lifecycle.terminate_session(actor=user, session=session, ip=ip)
    except ServiceError:
        return False
    return True


class Attachment:
    def __init__(self, session_id, consumer, access, user, ip):
        self.session_id = session_id
        self.consumer = consumer
        self.access = access
        self.user = user
        self.ip = ip

    async def terminate(self):
        """End the session from its terminal (the owner's alone); the home node hangs up."""
        if policy.can_end(self.access):
            return await _terminate(self.session_id, self.user, self.ip)
        return False


class LocalAttachment(Attachment):
    """A consumer attached to a session held by this node."""

    def __init__(self, live_session, consumer, access, user, ip):
        super().__init__(live_session.id, consumer, access, user, ip)
        self.live_session = live_session

    @classmethod
    async def open(cls, live_session, consumer, access, user, ip):
        await live_session.attach_local(consumer, access, user, ip)
        return cls(live_session, consumer, access, user, ip)

    def input(self, data):
        self.live_session.input(data, self.access)

    def control(self, message):
        self.live_session.control(message, self.access)

    def drawn(self, proven):
        """The consumer proved more output drawn (its count is the session's to read)."""
        self.live_session.resume_if_caught_up()

    async def terminate(self):
        if await super().terminate():  # ended here at once, without waiting for the notice
            await self.live_session.end(Status.TERMINATED, f"Ended by {self.user.email}")

    async def detach(self):
        await self.live_session.detach_local(self.consumer)


class RemoteAttachment(Attachment):
    """A consumer here attached to a session held by another node, through the channel layer."""

    def __init__(self, node, row, consumer, access, user, ip):
        super().__init__(str(row.pk), consumer, access, user, ip)
        self.node = node
        self.home = messages.node_channel(row.node)

    @classmethod
    async def open(cls, node, row, consumer, access, user, ip):
        attachment = cls(node, row, consumer, access, user, ip)
        await node.layer.group_add(messages.group_name(attachment.session_id), consumer.channel_name)
        await database_sync_to_async(lifecycle.attach_viewer)(
            session_id=row.pk, channel_name=consumer.channel_name, user=user, access=access, node_id=node.node_id,
            ip=ip, credential=consumer.scope.get("credential", ""),
        )
        await attachment._send("session.attach", channel=consumer.channel_name, access=access)
        return attachment

    async def _send(self, kind, **payload):
        """Send to the home node; while the channel layer is down this is lost (the node
        interrupts this terminal, which reconnects: sessions.runtime.node)."""
        try:
            await self.node.layer.send(self.home, {"type": kind, "session": self.session_id, **payload})
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.node.layer_failure.failed(exc)

    def input(self, data):
        if policy.can_type(self.access):
            self.node.loop.create_task(self._send("session.input", data=data, access=self.access))

    def control(self, message):
        self.node.loop.create_task(self._send("session.control", message=message, access=self.access))

    def drawn(self, proven):
        """Tell the home node how much of its output this owner has drawn: it paces the target by
        what it sent minus that, so output still on its way counts as well."""
        if self.access == Access.OWNER:
            self.node.loop.create_task(self._send("session.drawn", channel=self.consumer.channel_name, proven=proven))

    async def detach(self):
        self.node.remote_attachments.discard(self.consumer)
        await self.node.layer.group_discard(messages.group_name(self.session_id), self.consumer.channel_name)
        await database_sync_to_async(lifecycle.detach_viewer)(channel_name=self.consumer.channel_name)
        await self._send("session.detach", channel=self.consumer.channel_name, access=self.access)
