"""The benchmarks' SMTP sink: aiosmtpd in a process of its own (so it shares no GIL with the
senders), counting what it gets by Message-ID and stamping when messages arrive."""

import time
from collections import Counter


class _CountingHandler:
    """Accepts everything and counts Message-IDs; nothing else, to stay out of the way."""

    def __init__(self):
        self.counts = Counter()
        self.first_at = None  # epoch s of the first message since the last reset
        self.arrivals = {}  # recipient: epoch s of the first message to it (bench/latency.py)

    async def handle_DATA(self, server, session, envelope):
        from tests.smtp_servers import message_id_of

        arrived = time.time()
        if self.first_at is None:
            self.first_at = arrived
        for recipient in envelope.rcpt_tos:
            self.arrivals.setdefault(recipient, arrived)
        self.counts[message_id_of(envelope.original_content)] += 1
        return "250 2.0.0 Ok"


def _sink_process(port, connection):
    from aiosmtpd.controller import Controller

    handler = _CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    connection.send("ready")
    while True:
        command = connection.recv()
        if command == "counts":
            # Counter mutation happens on the server's loop thread; a copy is good enough here
            # because we only ask once the senders have finished.
            connection.send(Counter(handler.counts))
        elif command == "first":
            connection.send(handler.first_at)
        elif command == "arrivals":
            connection.send(dict(handler.arrivals))
        elif command == "reset":
            handler.counts.clear()
            handler.first_at = None
            handler.arrivals.clear()
            connection.send("ok")
        else:
            controller.stop()
            connection.send("stopped")
            return


class Sink:
    """The sink process and the pipe to ask it what it got."""

    def __init__(self, context):
        from tests.smtp_servers import free_port

        self.port = free_port()
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_sink_process, args=(self.port, child),
                                       daemon=True)

    def start(self):
        self.process.start()
        assert self.connection.recv() == "ready"
        return self

    def ask(self, command):
        self.connection.send(command)
        return self.connection.recv()

    def stop(self):
        if self.process.is_alive():
            self.ask("stop")
            self.process.join(10)
