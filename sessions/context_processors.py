from connections.choices import Protocol
from sessions.services.sessions import SESSION_TYPE_OF
from sessions.transports import available_types

# Protocols whose connections open a session in the browser: those a transport opens.
SESSION_PROTOCOLS = [p.value for p in Protocol if SESSION_TYPE_OF.get(p) in available_types()]


def session_protocols(request):
    """Give every console page the connection protocols that open a session in the browser.

    The connections page shows Connect only on those. Which they are is the session broker's
    knowledge (what it can open, and as which session type), and connections sits below
    sessions and never imports it; so sessions hands the list to the pages, wired together
    in settings, and it grows with what sessions opens without connections changing.
    """
    return {"session_protocols": SESSION_PROTOCOLS}
