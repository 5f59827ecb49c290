package main

import "crypto/rand"

// demoPassword is a password for a link to the demo SMSC that config left without one:
// random for each start, eight characters because SMPP 3.4 holds no more.
func demoPassword() string { return rand.Text()[:8] }
