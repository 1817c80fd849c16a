"""The floor for dispatch: a whole Python process re-sending one message's pre-built bytes.

bench/dispatch.py runs it as a subprocess and times it from start to exit, beside a whole
`flask dispatch` process sending the same number of confirmations to the same SMTP sink, so
start-up counts on both sides. The bytes are built once by our app (bench/dispatch.py writes
them to a file); here they are only sent, over one smtplib connection.

    python bench/baseline/dispatch_floor.py PORT FROM TO COUNT FILE
"""

import smtplib
import sys


def main(port, sender, recipient, count, path):
    """Send the file's bytes `count` times over one connection to 127.0.0.1:port."""
    with open(path, "rb") as file:
        data = file.read()
    with smtplib.SMTP("127.0.0.1", int(port)) as connection:
        for _ in range(int(count)):
            connection.sendmail(sender, [recipient], data)


if __name__ == "__main__":
    main(*sys.argv[1:])
