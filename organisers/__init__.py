"""The organiser console: sign-in, the programme, attendee exports, the outbox at a glance.
(The blueprint lives in organisers.views.)"""
