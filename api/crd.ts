import {
  BFDSpecSchema,
  BGPConfigurationCRD,
  BGPConfigurationSpecSchema,
  BGPConfigurationStatusSchema,
  BGPPeerCRD,
  BGPPeerSpecSchema,
  BGPStatusSchema,
  PrefixClassCommunitiesSchema,
  RouteReflectorStatusSchema,
  RouteReflectorsSpecSchema,
} from "./bgp.js";
import {
  BlockAllocationSchema,
  IPAMBlockCRD,
  IPAMBlockSpecSchema,
  IPAMBlockStatusSchema,
} from "./ipamblock.js";
import { IPPoolCRD, IPPoolSpecSchema, IPPoolStatusSchema } from "./ippool.js";
import {
  IPReservationCRD,
  IPReservationSpecSchema,
  IPReservationStatusSchema,
  ReservedAddressInUseSchema,
} from "./ipreservation.js";
import {
  ConditionSchema,
  type Kind,
  LabelSelectorRequirementSchema,
  LabelSelectorSchema,
  SecretKeyRefSchema,
} from "./meta.js";
import {
  BGPSessionStatusSchema,
  NodeNetworkStatusCRD,
  NodeNetworkStatusSpecSchema,
  NodeNetworkStatusStatusSchema,
  PeerPathSchema,
  UnderlayStatusSchema,
} from "./nodenetworkstatus.js";
import {
  IntentFDBSchema,
  IntentNeighborSchema,
  IntentRouteSchema,
  RouteIntentCRD,
  RouteIntentSpecSchema,
  RouteIntentStatusSchema,
  VTEPSchema,
} from "./routeintent.js";
import type { KindCRD, SchemaNode } from "./schema.js";

/** What each kind's CRD says beyond its types (crds/ is generated from these and the types). */
export const KIND_CRDS: Record<Kind, KindCRD> = {
  IPPool: IPPoolCRD,
  IPAMBlock: IPAMBlockCRD,
  RouteIntent: RouteIntentCRD,
  NodeNetworkStatus: NodeNetworkStatusCRD,
  BGPConfiguration: BGPConfigurationCRD,
  BGPPeer: BGPPeerCRD,
  IPReservation: IPReservationCRD,
};

/**
 * The TypeSchema of each interface, by the interface's name: it holds wherever the interface is
 * used. The generator fails on a name that no field of any kind uses.
 */
export const TYPE_SCHEMAS: Record<string, SchemaNode> = {
  Condition: ConditionSchema,
  LabelSelector: LabelSelectorSchema,
  LabelSelectorRequirement: LabelSelectorRequirementSchema,
  SecretKeyRef: SecretKeyRefSchema,
  IPPoolSpec: IPPoolSpecSchema,
  IPPoolStatus: IPPoolStatusSchema,
  BlockAllocation: BlockAllocationSchema,
  IPAMBlockSpec: IPAMBlockSpecSchema,
  IPAMBlockStatus: IPAMBlockStatusSchema,
  IntentRoute: IntentRouteSchema,
  IntentNeighbor: IntentNeighborSchema,
  IntentFDB: IntentFDBSchema,
  VTEP: VTEPSchema,
  RouteIntentSpec: RouteIntentSpecSchema,
  RouteIntentStatus: RouteIntentStatusSchema,
  BGPSessionStatus: BGPSessionStatusSchema,
  UnderlayStatus: UnderlayStatusSchema,
  PeerPath: PeerPathSchema,
  NodeNetworkStatusSpec: NodeNetworkStatusSpecSchema,
  NodeNetworkStatusStatus: NodeNetworkStatusStatusSchema,
  BGPConfigurationSpec: BGPConfigurationSpecSchema,
  BGPPeerSpec: BGPPeerSpecSchema,
  BGPStatus: BGPStatusSchema,
  BGPConfigurationStatus: BGPConfigurationStatusSchema,
  BFDSpec: BFDSpecSchema,
  RouteReflectorsSpec: RouteReflectorsSpecSchema,
  RouteReflectorStatus: RouteReflectorStatusSchema,
  PrefixClassCommunities: PrefixClassCommunitiesSchema,
  IPReservationSpec: IPReservationSpecSchema,
  IPReservationStatus: IPReservationStatusSchema,
  ReservedAddressInUse: ReservedAddressInUseSchema,
};
