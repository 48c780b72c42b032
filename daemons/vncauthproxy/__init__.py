"""nefeli-vncauthproxy: one-time-password VNC console proxy (snf-vncauthproxy's role)."""
