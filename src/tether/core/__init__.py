"""Pure logic shared by every part of Tether. Nothing here performs I/O."""
