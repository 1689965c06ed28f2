/**
 * The consumer's workflow: a parcel is booked with a carrier (an effect),
 * delivered after a delay (a timer), or dead-lettered when no carrier takes it.
 */
import { Schema } from "effect"
import { Decision, Workflow } from "ironflow"

export class Ship extends Schema.TaggedClass<Ship>()("Ship", { parcelId: Schema.String, address: Schema.String }) {}
export class Booked extends Schema.TaggedClass<Booked>()("Booked", {
  parcelId: Schema.String,
  tracking: Schema.String
}) {}
export class Deliver extends Schema.TaggedClass<Deliver>()("Deliver", { parcelId: Schema.String }) {}

export class ShipRequested extends Schema.TaggedClass<ShipRequested>()("ShipRequested", { address: Schema.String }) {}
export class BookingConfirmed extends Schema.TaggedClass<BookingConfirmed>()("BookingConfirmed", {
  tracking: Schema.String
}) {}
export class Delivered extends Schema.TaggedClass<Delivered>()("Delivered", {}) {}

export class BookCarrier extends Schema.TaggedClass<BookCarrier>()("BookCarrier", {
  parcelId: Schema.String,
  address: Schema.String
}) {}

export const Status = Schema.Literal("new", "requested", "booked", "delivered")

export const ParcelWorkflow = Workflow.make({
  type: "parcel",
  state: Schema.Struct({ status: Status, tracking: Schema.NullOr(Schema.String) }),
  input: Schema.Union(Ship, Booked, Deliver),
  event: Schema.Union(ShipRequested, BookingConfirmed, Delivered),
  effect: BookCarrier,
  rejection: Schema.String,
  initialState: { status: "new", tracking: null },
  workflowId: { field: "parcelId" },
  evolve: (state, event) => {
    switch (event._tag) {
      case "ShipRequested":
        return { ...state, status: "requested" as const }
      case "BookingConfirmed":
        return { status: "booked" as const, tracking: event.tracking }
      case "Delivered":
        return { ...state, status: "delivered" as const }
    }
  },
  decide: (_now, state, input) => {
    switch (input._tag) {
      case "Ship":
        return state.status !== "new"
          ? Decision.reject("already shipped")
          : Decision.accept(new ShipRequested({ address: input.address })).pipe(
            Decision.withEffect(new BookCarrier({ parcelId: input.parcelId, address: input.address }))
          )
      case "Booked":
        return Decision.accept(new BookingConfirmed({ tracking: input.tracking })).pipe(
          Decision.withTimerAfter("300 millis", new Deliver({ parcelId: input.parcelId }), { key: "delivery" })
        )
      case "Deliver":
        return Decision.accept(new Delivered())
    }
  },
  isTerminal: (state) => state.status === "delivered"
})
