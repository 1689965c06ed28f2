/**
 * A workflow that can be cancelled from outside (`cancel` on its definition):
 * an order that is opened (with a keyed `ship` timer a day later), shipped,
 * or cancelled. `decide` chooses what cancelling means: an open order is
 * cancelled and its timer cancelled; a shipped one refuses; an order that was
 * never opened refuses too.
 */
import { Schema } from "effect"
import { Decision, Workflow } from "ironflow"

export class Open extends Schema.TaggedClass<Open>("CancelTest/Open")("Open", { id: Schema.String }) {}
export class Ship extends Schema.TaggedClass<Ship>("CancelTest/Ship")("Ship", { id: Schema.String }) {}
export class Cancel extends Schema.TaggedClass<Cancel>("CancelTest/Cancel")("Cancel", {
  id: Schema.String,
  reason: Schema.String
}) {}
export const CancelInput = Schema.Union(Open, Ship, Cancel)
export type CancelInput = typeof CancelInput.Type

export class Opened extends Schema.TaggedClass<Opened>("CancelTest/Opened")("Opened", {}) {}
export class Shipped extends Schema.TaggedClass<Shipped>("CancelTest/Shipped")("Shipped", {}) {}
export class Cancelled extends Schema.TaggedClass<Cancelled>("CancelTest/Cancelled")("Cancelled", {
  reason: Schema.String
}) {}
export const CancelEvent = Schema.Union(Opened, Shipped, Cancelled)
export type CancelEvent = typeof CancelEvent.Type

export const CancelState = Schema.Struct({
  status: Schema.Literal("new", "open", "shipped", "cancelled"),
  reason: Schema.NullOr(Schema.String)
})
export type CancelState = typeof CancelState.Type

export const makeCancellableWorkflow = (
  type: string,
  options: { readonly cancel?: ((reason: string, workflowId: string) => CancelInput) | "none" } = {}
) =>
  Workflow.make({
    type,
    state: CancelState,
    input: CancelInput,
    event: CancelEvent,
    rejection: Schema.String,
    initialState: { status: "new", reason: null } as CancelState,
    workflowId: { field: "id" },
    evolve: (state, event): CancelState => {
      switch (event._tag) {
        case "Opened":
          return { ...state, status: "open" }
        case "Shipped":
          return { ...state, status: "shipped" }
        case "Cancelled":
          return { status: "cancelled", reason: event.reason }
      }
    },
    decide: (_now, state, input) => {
      switch (input._tag) {
        case "Open":
          return state.status === "new"
            ? Decision.accept(new Opened()).pipe(Decision.withTimerAfter("1 day", new Ship({ id: input.id }), {
              key: "ship"
            }))
            : Decision.reject("already opened")
        case "Ship":
          return state.status === "open"
            ? Decision.accept(new Shipped())
            : Decision.reject(`cannot ship: ${state.status}`)
        case "Cancel":
          return state.status === "open"
            ? Decision.accept(new Cancelled({ reason: input.reason })).pipe(Decision.cancelTimer("ship"))
            : Decision.reject(state.status === "new" ? "no such order" : `cannot cancel: ${state.status}`)
      }
    },
    // A shipped order stays open (for returns); a cancelled one is done.
    isTerminal: (state) => state.status === "cancelled",
    cancel: options.cancel === "none"
      ? undefined
      : options.cancel ?? ((reason, workflowId) => new Cancel({ id: workflowId, reason }))
  })
