"""Everything that leaves as email: the outbox, invites, mail building and sending."""
