# Sourced by the scripts: `at_exit 'command'` runs the command when the script exits,
# after those added later (last added, first run). The command is expanded at exit.
at_exit_commands=""

at_exit() {
    at_exit_commands="$1; $at_exit_commands"
    # Double quotes on purpose: the trap is the whole list as it stands now.
    trap "$at_exit_commands" EXIT
}
