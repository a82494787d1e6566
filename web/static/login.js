"use strict";
// The server never sees the part of the address after "#" (the admin UI's screen), so the login form
// carries it along in its "next" field: after login the browser comes back to that very screen.
document.addEventListener("DOMContentLoaded", () => {
  const next = document.querySelector('input[name="next"]');
  if (next && location.hash.startsWith("#/") && !next.value.includes("#")) next.value += location.hash;
});
