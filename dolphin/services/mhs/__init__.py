"""MHS v3, the meta-health service: sensors M1–M5, rm_meta, recovery through supervisord."""
