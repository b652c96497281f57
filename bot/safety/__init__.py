"""Safety of people who may be watched: commands they can write at any moment."""
