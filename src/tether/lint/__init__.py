"""Architecture checks: the route audit (``tether audit``) and the code rules (``tether lint``)."""
