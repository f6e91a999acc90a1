"""What `hookyard` exits with, so a script can tell a typo from an outage (docs/local-development.md#exit-codes).

Usage keeps argparse's 2; the interrupt code is the shell's 128 + SIGINT.
`listen` and `messages tail` are stopped with Ctrl-C by design, so they end 0.
"""

#: Everything went as asked.
OK = 0
#: The command ran, and the answer is no (`status`: something is not ready).
NOT_READY = 1
#: A mistake on the command line or in the configuration (an unknown flag, no API key).
USAGE = 2
#: The ingest (or a broker, database or local app the command needs) could not be reached.
CONNECTION = 3
#: The ingest answered with an error (a bad key, an unknown id, a refused value).
API = 4
#: Stopped by Ctrl-C.
INTERRUPTED = 130
