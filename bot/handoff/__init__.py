"""The handoff queue: cases that a person from the hotline must see."""
