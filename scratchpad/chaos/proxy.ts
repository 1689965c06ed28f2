/**
 * An in-process TCP proxy between the runtime processes and PostgreSQL, to
 * simulate a database restart without touching the shared server: `outage`
 * destroys every proxied connection and refuses new ones (the listening
 * socket is closed, so clients get ECONNREFUSED as from a stopped server)
 * until it is over.
 */
import { Effect } from "effect"
import * as net from "node:net"

export interface Proxy {
  /** The port clients connect to (stable across outages). */
  readonly port: number
  /** Connections accepted so far, and the number open now. */
  readonly stats: () => { readonly accepted: number; readonly open: number; readonly refusedOutages: number }
  /** Kills every connection and refuses new ones for `millis`, then accepts again. */
  readonly outage: (millis: number) => Effect.Effect<{ readonly killed: number }>
}

const listen = (server: net.Server, port: number) =>
  Effect.async<number, Error>((resume) => {
    const onError = (error: Error) => resume(Effect.fail(error))
    server.once("error", onError)
    server.listen(port, "127.0.0.1", () => {
      server.off("error", onError)
      resume(Effect.succeed((server.address() as net.AddressInfo).port))
    })
  })

const close = (server: net.Server) =>
  Effect.async<void>((resume) => {
    if (!server.listening) return resume(Effect.void)
    server.close(() => resume(Effect.void))
  })

/** Starts a proxy to `target`; it is closed (with its connections) when the scope closes. */
export const make = (target: { readonly host: string; readonly port: number }) =>
  Effect.gen(function*() {
    const sockets = new Set<net.Socket>()
    let accepted = 0
    let outages = 0
    const onConnection = (client: net.Socket) => {
      accepted++
      const upstream = net.connect(target.port, target.host)
      sockets.add(client)
      sockets.add(upstream)
      const teardown = () => {
        client.destroy()
        upstream.destroy()
        sockets.delete(client)
        sockets.delete(upstream)
      }
      client.on("error", teardown).on("close", teardown)
      upstream.on("error", teardown).on("close", teardown)
      client.pipe(upstream)
      upstream.pipe(client)
    }
    let server = net.createServer(onConnection)
    const port = yield* listen(server, 0)
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        for (const socket of sockets) socket.destroy()
        sockets.clear()
        return close(server)
      })
    )
    const proxy: Proxy = {
      port,
      stats: () => ({ accepted, open: sockets.size / 2, refusedOutages: outages }),
      outage: (millis) =>
        Effect.gen(function*() {
          outages++
          yield* close(server).pipe(Effect.fork) // stop accepting now; the close completes once sockets are gone
          const killed = sockets.size / 2
          for (const socket of sockets) socket.destroy()
          sockets.clear()
          yield* Effect.sleep(millis)
          server = net.createServer(onConnection)
          yield* listen(server, port).pipe(Effect.orDie)
          return { killed }
        })
    }
    return proxy
  })
