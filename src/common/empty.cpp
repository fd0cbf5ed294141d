// empty.cpp — stands in for a folder that has no sources yet, so every library target exists.
