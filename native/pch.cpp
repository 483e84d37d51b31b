// Compiled once to produce the precompiled header.
