// The Express middleware against the real service (with real Express): cookie → req.session, reasons, cache and revocation feed, helpers.
import t from 'tap'
import { behaves } from './_behaviour.js'
import { expressBackend } from './_apps.js'

behaves(t, 'express', expressBackend)
