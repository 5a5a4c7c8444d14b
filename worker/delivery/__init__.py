"""Push delivery: each nudge_sent to the user's phone (FCM, or a signed webhook), and one outcome back in the log."""
