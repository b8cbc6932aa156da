// The built-in tabletop simulation: a seeded two-joint reaching task seen by an overhead camera.
export { TabletopSim, SIM_EPOCH, JOINT_NAMES, CAMERA_FRAME_ID, type StepResult, type ArmPixels } from './tabletop.js';
export { SIM_DEFAULTS, type TabletopSimOptions, type ResolvedSimOptions } from './options.js';
export { TABLE, COLOURS, TARGET_COLOUR, CameraGeometry, type Scene, type SceneObject, type ShapeKind, type ColourName, type WoodPlank } from './scene.js';
export { forwardKinematics, inverseKinematics, EXPERT_GAIN } from './kinematics.js';
export { runExpertEpisode, type ExpertEpisode, type TrajectoryStep } from './expert.js';
export { renderEpisodesPng, type EpisodePath } from './plot.js';
