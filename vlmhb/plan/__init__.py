"""Planning: plan files (native and v0.1) into validated runs, prompt collections, and the
model catalogue (which model runs on which backend, in which env)."""
