"""More `qinling` subcommands, one module per area, each with `register(subparsers)`.

Listed explicitly (one line each); `console/cli.py` registers them after its own commands.
"""

MODULES: tuple[str, ...] = (
    "console.commands.users",
    "console.commands.demo",
    "console.commands.assets",
    "console.commands.vulns",
    "console.commands.anomaly",
    "console.commands.services",
    "console.commands.kafka_accounts",
)
