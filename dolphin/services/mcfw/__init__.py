"""The MC-Forewarner daemon (`mcfw`): a Monte-Carlo of the engine every 4 h → DOLPHIN_FEATURES[mc_forewarner_latest]."""
