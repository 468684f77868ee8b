// The Fastify plugin against the real service: cookie → request.session, reasons, cache and revocation feed, helpers.
import t from 'tap'
import { behaves } from './_behaviour.js'
import { fastifyBackend } from './_apps.js'

behaves(t, 'fastify', fastifyBackend)
