"""The ACB v6 processor (bible §10, §15.5, §16.4): ExF + w750 + OB macro → ``DOLPHIN_FEATURES["acb_boost"]``.

Scale 1 (signals → base boost) from `exf_latest`, Scale 3 (beta) from the trailing w750
velocities of the scans, OB-4 from `ob_macro_latest`, all through the engine's own ACB
functions. It writes only while holding the CP FencedLock ``DOLPHIN_ACB_WRITER``: a second
instance waits. See ``docs/risk.md``.
"""
