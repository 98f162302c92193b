"""The survival watchdog (bible §11, §14.6): five sensor categories → Rm → posture on ``DOLPHIN_SAFETY``.

Reads the bus once per market bar (membership, the trader's heartbeat and capital, MC,
ExF, OBF, the latest scan), scores it with the engine's survival stack — the same code
a backtest runs — and writes the posture with Rm, every sensor and the reason to the CP
AtomicReference and the IMap ``DOLPHIN_SAFETY["latest"]``. See ``docs/risk.md``.
"""
