"""The SMTP conversations of one dispatcher: in its own thread, or in a pool of threads that
each own one connection and only talk SMTP (SMTP_CONNECTIONS), so that while one server
answers, the dispatcher's thread builds the next message and records what has been sent."""

import queue
import threading

from notifications import transports


def _send(transport, mail):
    # A refusal of us (not of the message) is an outcome for the dispatcher to act on.
    try:
        return transport.send(mail)
    except transports.SenderRejected as exc:
        return exc


class InlineSenders:
    """One transport in the caller's thread: each message is sent as it is submitted."""

    capacity = 1
    in_flight = 0

    def __init__(self, transport):
        self.transport = transport
        self.done = []

    def __enter__(self):
        self.transport.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.transport.__exit__(*exc_info)

    def submit(self, key, mail) -> None:
        """Send `mail` now; its outcome is the next thing `finished` returns."""
        self.done.append((key, _send(self.transport, mail)))

    def finished(self, wait: bool = False) -> list:
        """(key, Outcome or SenderRejected) for each message sent since last asked."""
        done, self.done = self.done, []
        return done


class PooledSenders:
    """Up to `capacity` threads, each with one SMTP connection of its own, started as the
    messages in flight need them (a batch of one opens one connection).

    Only the caller's thread submits and collects; the threads never see the database: they get
    built bytes and give back outcomes. A thread's unexpected error comes back as its outcome,
    for the caller to raise.
    """

    def __init__(self, config, capacity: int):
        self.config = config
        self.capacity = capacity
        self.jobs = queue.SimpleQueue()
        self.results = queue.SimpleQueue()
        self.threads = []
        self.in_flight = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        """Let each thread finish its message and say QUIT; wait for them."""
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()
        self.threads = []

    def _run(self) -> None:
        with transports.SMTPTransport(self.config) as transport:
            while (job := self.jobs.get()) is not None:
                key, mail = job
                try:
                    outcome = _send(transport, mail)
                except BaseException as exc:  # raised again in the caller's thread
                    outcome = exc
                self.results.put((key, outcome))

    def submit(self, key, mail) -> None:
        """Hand `mail` to an idle connection; never more than `capacity` at once."""
        if self.in_flight >= self.capacity:
            raise RuntimeError("no connection is free: collect a finished message first")
        self.in_flight += 1
        if self.in_flight > len(self.threads):
            thread = threading.Thread(target=self._run, daemon=True,
                                      name=f"smtp-{len(self.threads) + 1}")
            thread.start()
            self.threads.append(thread)
        self.jobs.put((key, mail))

    def finished(self, wait: bool = False) -> list:
        """(key, outcome) for each message finished since last asked; with `wait`, at least
        one if any is in flight."""
        done = []
        if wait and self.in_flight:
            done.append(self.results.get())
        while True:
            try:
                done.append(self.results.get_nowait())
            except queue.Empty:
                break
        self.in_flight -= len(done)
        return done


def open_senders(config):
    """The senders for MAIL_BACKEND and SMTP_CONNECTIONS, as a context manager that closes
    their connections. The file backend writes in the caller's thread."""
    connections = config.get("SMTP_CONNECTIONS", 1)
    if config["MAIL_BACKEND"] == "smtp" and connections > 1:
        return PooledSenders(config, connections)
    return InlineSenders(transports.open_transport(config))
