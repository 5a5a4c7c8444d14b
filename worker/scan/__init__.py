"""The inactivity scan: who is due under each rule, and exactly one nudge per lapse."""
